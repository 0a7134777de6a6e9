# Runs inside the kernel-test VM (see src/testbed/kernel-vm.ts), in the checkout, as root.
set -u
# Settings from the host side (which cases, transfer size), if any.
[ -f .cache/kernel-vm/env ] && . ./.cache/kernel-vm/env
# Modules the tests need that nothing loads on demand (the TUN device node appears with the module).
modprobe -d "$TSWG_VM_MODROOT" tun || echo "modprobe tun failed"
exec node test/kernel/vm/main.mjs
