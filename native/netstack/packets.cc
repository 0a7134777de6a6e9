// Parsing and building the IP packets the router mode handles outside lwIP.
//
// 1. ParseTransport reads the 5-tuple (and TCP flags) of an inbound IPv4/IPv6 TCP or UDP packet.
// 2. BuildUdp makes the reply datagram of a UDP flow, source = the flow's destination.
// 3. BuildTcpReset makes the RST for a SYN whose upstream dial failed.
// 4. SetWindowScale rewrites the window scale option of the stack's own SYN and SYN-ACK
//    segments on their way out (stack.cc says why).
#include "packets.h"

#include "../src/tcp_options.h"

#include <cstring>

namespace tswg_netstack {
namespace {

uint32_t SumBytes(const uint8_t* p, size_t n, uint32_t sum) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t(p[i]) << 8) | p[i + 1];
  if (n & 1) sum += uint32_t(p[n - 1]) << 8;
  return sum;
}

uint16_t Fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum & 0xffff);
}

void Put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

void Put32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

uint16_t Get16(const uint8_t* p) { return uint16_t((p[0] << 8) | p[1]); }
uint32_t Get32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

// Writes an IP header for `l4len` bytes of `proto` from src to dst; returns the header length.
size_t PutIpHeader(uint8_t family, uint8_t proto, const uint8_t* src, const uint8_t* dst, size_t l4len,
                   std::vector<uint8_t>* out) {
  if (family == 4) {
    out->assign(20 + l4len, 0);
    uint8_t* h = out->data();
    h[0] = 0x45;
    Put16(h + 2, uint16_t(20 + l4len));
    h[6] = 0x40;  // don't fragment
    h[8] = 64;
    h[9] = proto;
    std::memcpy(h + 12, src, 4);
    std::memcpy(h + 16, dst, 4);
    Put16(h + 10, Fold(SumBytes(h, 20, 0)));
    return 20;
  }
  out->assign(40 + l4len, 0);
  uint8_t* h = out->data();
  h[0] = 0x60;
  Put16(h + 4, uint16_t(l4len));
  h[6] = proto;
  h[7] = 64;
  std::memcpy(h + 8, src, 16);
  std::memcpy(h + 24, dst, 16);
  return 40;
}

uint16_t TransportChecksum(uint8_t family, uint8_t proto, const uint8_t* src, const uint8_t* dst,
                           const uint8_t* l4, size_t l4len) {
  size_t alen = family == 4 ? 4 : 16;
  uint32_t sum = SumBytes(src, alen, 0);
  sum = SumBytes(dst, alen, sum);
  sum += proto;
  sum += uint32_t(l4len & 0xffff) + uint32_t(l4len >> 16);
  sum = SumBytes(l4, l4len, sum);
  uint16_t c = Fold(sum);
  return (proto == 17 && c == 0) ? 0xffff : c;
}

}  // namespace

bool ParseTransport(const uint8_t* pkt, size_t len, ParsedPacket* out) {
  if (len < 1) return false;
  uint8_t v = pkt[0] >> 4;
  size_t hl, total;
  if (v == 4) {
    if (len < 20) return false;
    hl = size_t(pkt[0] & 0x0f) * 4;
    total = Get16(pkt + 2);
    if (hl < 20 || total < hl || total > len) return false;
    out->key.family = 4;
    out->key.proto = pkt[9];
    std::memcpy(out->key.src, pkt + 12, 4);
    std::memcpy(out->key.dst, pkt + 16, 4);
    uint16_t frag = Get16(pkt + 6);
    out->fragment = (frag & 0x3fff) != 0;
  } else if (v == 6) {
    if (len < 40) return false;
    hl = 40;
    total = 40 + size_t(Get16(pkt + 4));
    if (total > len) return false;
    out->key.family = 6;
    out->key.proto = pkt[6];
    std::memcpy(out->key.src, pkt + 8, 16);
    std::memcpy(out->key.dst, pkt + 24, 16);
    out->fragment = out->key.proto == 44;
  } else {
    return false;
  }
  if (out->fragment) return true;
  out->l4_offset = hl;
  out->l4_length = total - hl;
  const uint8_t* l4 = pkt + hl;
  if (out->key.proto == 6) {
    if (out->l4_length < 20) return false;
    size_t doff = size_t(l4[12] >> 4) * 4;
    if (doff < 20 || doff > out->l4_length) return false;
    out->key.sport = Get16(l4);
    out->key.dport = Get16(l4 + 2);
    out->tcp_seq = Get32(l4 + 4);
    out->tcp_ack = Get32(l4 + 8);
    out->tcp_flags = l4[13];
    out->tcp_payload = out->l4_length - doff;
    return true;
  }
  if (out->key.proto == 17) {
    if (out->l4_length < 8) return false;
    out->key.sport = Get16(l4);
    out->key.dport = Get16(l4 + 2);
    return true;
  }
  return false;
}

void BuildUdp(const FlowKey& flow, const uint8_t* payload, size_t len, std::vector<uint8_t>* out) {
  // The reply travels from the flow's destination back to its source.
  size_t hl = PutIpHeader(flow.family, 17, flow.dst, flow.src, 8 + len, out);
  uint8_t* u = out->data() + hl;
  Put16(u, flow.dport);
  Put16(u + 2, flow.sport);
  Put16(u + 4, uint16_t(8 + len));
  if (len > 0) std::memcpy(u + 8, payload, len);
  Put16(u + 6, TransportChecksum(flow.family, 17, flow.dst, flow.src, u, 8 + len));
}

void BuildTcpReset(const ParsedPacket& p, std::vector<uint8_t>* out) {
  size_t hl = PutIpHeader(p.key.family, 6, p.key.dst, p.key.src, 20, out);
  uint8_t* t = out->data() + hl;
  Put16(t, p.key.dport);
  Put16(t + 2, p.key.sport);
  uint32_t seg_len = uint32_t(p.tcp_payload) + ((p.tcp_flags & 0x02) ? 1 : 0) + ((p.tcp_flags & 0x01) ? 1 : 0);
  if (p.tcp_flags & 0x10) {
    Put32(t + 4, p.tcp_ack);  // RST with SEQ = their ACK
    t[13] = 0x04;
  } else {
    Put32(t + 8, p.tcp_seq + seg_len);  // RST|ACK acknowledging the segment
    t[13] = 0x14;
  }
  t[12] = 0x50;
  Put16(t + 16, TransportChecksum(p.key.family, 6, p.key.dst, p.key.src, t, 20));
}

bool SetWindowScale(uint8_t* pkt, const ParsedPacket& p, uint8_t shift) {
  if (p.key.proto != 6 || p.fragment) return false;
  uint8_t* t = pkt + p.l4_offset;
  size_t at = tswg::FindTcpOption(t, tswg::kTcpOptionWindowScale, 3);
  if (at == 0) return false;
  tswg::RewriteTcpBytes(t, at, &shift, 1);
  return true;
}

}  // namespace tswg_netstack
