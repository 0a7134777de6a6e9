// TUN offloads (IFF_VNET_HDR): every packet read from or written to the TUN carries a
// virtio-net header. Reads may return TCP/UDP "super-packets" of up to 64 KiB that the kernel
// expects us to segment (GSO); writes may carry such super-packets that we built by joining
// consecutive segments of one TCP flow (GRO), which saves the kernel a trip through its
// stack per segment.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <vector>

#include "packet_batch.h"
#include "packet_sink.h"

namespace tswg {

struct VirtioNetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
static_assert(sizeof(VirtioNetHdr) == 10, "virtio_net_hdr is 10 bytes");

constexpr size_t kVnetHdrLen = sizeof(VirtioNetHdr);
constexpr uint8_t kVnetFlagNeedsCsum = 1;
constexpr uint8_t kVnetFlagDataValid = 2;
constexpr uint8_t kGsoNone = 0;
constexpr uint8_t kGsoTcpV4 = 1;
constexpr uint8_t kGsoTcpV6 = 4;
constexpr uint8_t kGsoUdpL4 = 5;
constexpr uint8_t kGsoEcn = 0x80;

// Largest IP packet a TUN hands over or takes.
constexpr size_t kMaxIpPacket = 65535;

enum class SplitResult { kOk, kMalformed, kNoMemory };

// Appends the plain IP packets contained in one packet read with a virtio-net header to
// `out`: the packet itself (with its checksum completed when the kernel left that to us), or
// each segment of a GSO super-packet with lengths, sequence numbers, IPv4 IDs and checksums
// fixed up. On kMalformed nothing is appended.
SplitResult SplitVnetPacket(const VirtioNetHdr& hdr, const uint8_t* pkt, size_t len,
                            PacketBatch* out);

struct TunWriteStats {
  uint64_t packets = 0;   // IP packets accepted by the kernel (segments of joined ones counted)
  uint64_t writes = 0;    // write system calls that succeeded
  uint64_t coalesced = 0;  // packets that went out joined to a previous one
  uint64_t dropped = 0;   // packets the kernel refused
  int last_errno = 0;
};

struct SegmentView;

// TUN_F_* offload flags (TUNSETOFFLOAD); the USO ones are newer than some system headers.
constexpr unsigned kOffloadCsum = 0x01;
constexpr unsigned kOffloadTso4 = 0x02;
constexpr unsigned kOffloadTso6 = 0x04;
constexpr unsigned kOffloadUso4 = 0x20;
constexpr unsigned kOffloadUso6 = 0x40;

// Collects IP packets for one TUN write burst, joins consecutive segments of one flow — TCP
// segments in sequence, UDP datagrams of equal size — and writes the result. Only what the
// TUN's offloads cover is joined. Packets are referenced, not copied, until they are joined:
// they must stay valid until Flush(). Reusable; allocates its buffers once.
class TunWriter {
 public:
  // `offloads`: the TUN_F_* flags the TUN accepted (ignored without a virtio-net header).
  TunWriter(bool vnet, unsigned offloads);
  ~TunWriter();
  TunWriter(const TunWriter&) = delete;
  TunWriter& operator=(const TunWriter&) = delete;

  void Add(const uint8_t* pkt, size_t len);
  // Writes everything added since the last Flush, in order within each flow; to `sink` by a
  // call instead when there is one (the network stack's packet socket, see packet_sink.h).
  void Flush(int fd, TunWriteStats* stats, const PacketSinkRef* sink = nullptr);
  size_t pending() const { return units_.size(); }

  // For tests: the write units Flush would produce, as (virtio header, bytes) pairs.
  struct Unit {
    VirtioNetHdr hdr;
    const uint8_t* data;
    size_t len;
    uint32_t segments;
  };
  void Finish(std::vector<Unit>* units);
  void Reset();

 private:
  struct Group;
  struct SegmentKind {
    int version;
    uint8_t proto;
  };
  bool MayJoin(const SegmentKind& kind) const;
  bool TryJoin(Group& g, const uint8_t* pkt, size_t len, const SegmentView& v);
  void Close(Group& g);

  // A plain packet socket instead of a TUN (the userspace network stack's socketpair): found
  // once per descriptor; its packets go out in batches (sendmmsg) instead of a write each.
  bool IsPacketSocket(int fd);
  void SendBatched(int fd, TunWriteStats* stats);
  void DeliverToSink(const PacketSinkRef& sink, TunWriteStats* stats);
  // Packets go to a socket or a sink at most this many per call.
  static constexpr size_t kIovChunk = 64;
  // Up to kIovChunk single-packet units from `from` as iovecs; how many.
  size_t UnitsAsIov(size_t from, struct iovec* iov) const;

  bool vnet_;
  unsigned offloads_;
  int probed_fd_ = -1;
  bool packet_socket_ = false;
  struct UnitRef {
    const uint8_t* data;
    uint32_t len;
    int group;  // -1: a single packet
  };
  std::vector<UnitRef> units_;
  std::vector<Group> groups_;
  size_t groups_used_ = 0;
};

}  // namespace tswg
