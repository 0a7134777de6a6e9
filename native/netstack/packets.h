// Small IP packet helpers for the router mode: parsing the 5-tuple of an inbound packet and
// building the few packets the stack answers without lwIP (UDP replies, TCP resets).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tswg_netstack {

struct FlowKey {
  uint8_t family = 0;   // 4 or 6
  uint8_t proto = 0;    // 6 TCP, 17 UDP
  uint8_t src[16] = {};
  uint8_t dst[16] = {};
  uint16_t sport = 0;
  uint16_t dport = 0;
};

struct ParsedPacket {
  FlowKey key;
  size_t l4_offset = 0;   // start of the TCP/UDP header
  size_t l4_length = 0;   // TCP/UDP header + payload
  uint8_t tcp_flags = 0;
  uint32_t tcp_seq = 0;
  uint32_t tcp_ack = 0;
  size_t tcp_payload = 0;
  bool fragment = false;
};

// Parses an IPv4/IPv6 packet carrying TCP or UDP (no IPv6 extension headers). False otherwise.
bool ParseTransport(const uint8_t* pkt, size_t len, ParsedPacket* out);

// A UDP datagram from `from` (the flow's destination) to `to` (the flow's source).
void BuildUdp(const FlowKey& flow, const uint8_t* payload, size_t len, std::vector<uint8_t>* out);

// A TCP RST answering the segment described by `p` (RFC 9293 3.10.7.1).
void BuildTcpReset(const ParsedPacket& p, std::vector<uint8_t>* out);

// Sets the shift count of the window scale option (RFC 7323 2.2) of the TCP segment `p`
// describes, in place, and updates its checksum. False when the segment has no such option.
bool SetWindowScale(uint8_t* pkt, const ParsedPacket& p, uint8_t shift);

}  // namespace tswg_netstack
