{
  # The tswg_native addon. npm builds it on install (node-gyp rebuild) into build/Release;
  # src/native/load.ts finds it there and the TypeScript code falls back when it is absent.
  "targets": [
    {
      "target_name": "tswg_native",
      "sources": ["native/src/addon.cc", "native/src/errno_error.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden"],
      "conditions": [
        ["OS=='linux'", {
          "sources": [
            "native/src/netif_ioctl.cc",
            "native/src/tun_open.cc",
            "native/src/tun_reader.cc",
            "native/src/tun_device.cc"
          ],
          "libraries": ["-pthread"]
        }]
      ]
    }
  ]
}
