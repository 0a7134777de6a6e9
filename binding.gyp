{
  # The tswg_native addon. npm builds it on install (node-gyp rebuild) into build/Release;
  # src/native/load.ts finds it there and the TypeScript code falls back when it is absent.
  # Parts: TUN device I/O with offloads, native UDP sockets, the native data path, and
  # ChaCha20-Poly1305 through the libcrypto that Node exports.
  # Shared by every addon. NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: a call into JavaScript
  # while a worker or the process is being torn down fails; node-addon-api then ends the process
  # with a fatal error unless told to let the failure pass (there is nobody left to throw to).
  "target_defaults": {
    "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED",
                "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"]
  },
  "targets": [
    {
      "target_name": "tswg_native",
      "sources": ["native/src/addon.cc", "native/src/errno_error.cc", "native/src/aead.cc", "native/src/crypto_binding.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden"],
      # OpenSSL comes from the Node binary itself, which exports libcrypto's symbols; the
      # headers are in node-gyp's include path. Nothing is linked.
      "conditions": [
        ["OS=='linux'", {
          "sources": [
            "native/src/netif_ioctl.cc",
            "native/src/tun_open.cc",
            "native/src/tun_reader.cc",
            "native/src/tun_device.cc",
            "native/src/vnet.cc",
            "native/src/udp_socket.cc",
            "native/src/pmtu.cc",
            "native/src/icmp_too_big.cc",
            "native/src/mss_clamp.cc",
            "native/src/udp_port.cc",
            "native/src/datapath.cc",
            "native/src/helpers_binding.cc"
          ],
          "libraries": ["-pthread"]
        }]
      ]
    },
    {
      # The tswg_kernel addon (kernel mode only): netlink sockets and raw UDP sockets with a
      # BPF filter, which Node cannot open. Loaded by src/kernel/addon.ts; Linux only.
      "target_name": "tswg_kernel",
      "conditions": [
        ["OS=='linux'", {
          "sources": ["native/src/kernel/kernel_sockets.cc", "native/src/errno_error.cc"],
          "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
          "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden"]
        }]
      ]
    }
  ],
  # The tswg_netstack addon: the userspace network stack (docs/netstack.md) on Debian's lwIP
  # (liblwip-dev). Built only where its headers are installed; src/netstack says why it is
  # missing otherwise.
  "conditions": [
    ["OS=='linux' and '<!(test -f /usr/include/lwip/lwip/tcp.h && echo yes || echo no)'=='yes'", {
      "targets": [
        {
          "target_name": "tswg_netstack",
          "sources": ["native/netstack/stack.cc", "native/netstack/packets.cc"],
          "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "/usr/include/lwip"],
          "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-fvisibility=hidden"],
          "libraries": ["-llwip", "-pthread"]
        }
      ]
    }]
  ]
}
