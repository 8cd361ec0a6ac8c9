/**
 * The PCI bus as a Linux guest sees it, for linux-tier tests of any host that lists the pci plugin (the
 * cloud host, virtio-pci): a guest script fragment that prints key=value lines, and the checks of what it
 * printed. Fold them into an existing boot instead of booting once more.
 */

/**
 * Guest shell (busybox ash; the kit has no lspci): `pcidev-<bdf>=<vendor>:<device>:<class>` per function from
 * sysfs, `pci-mmconfig` (MCFG accepted as an ACPI motherboard resource), `pci-hostbridge` (the PCI0 root bus
 * found), `pci-problems` (dmesg lines about resource conflicts, unclaimable BARs, unreserved MMCONFIG or
 * firmware bugs) and the PCI lines of dmesg prefixed `dmesg: `.
 */
export const PCI_GUEST_SCRIPT = `
for d in /sys/bus/pci/devices/*; do echo "pcidev-$(basename $d)=$(cat $d/vendor):$(cat $d/device):$(cat $d/class)"; done
echo "pci-mmconfig=$(dmesg | grep -c 'MMCONFIG at \\[mem .*\\] reserved in ACPI motherboard resources')"
echo "pci-hostbridge=$(dmesg | grep -c 'PCI host bridge to bus 0000:00')"
echo "pci-problems=$(dmesg | grep -ciE 'conflict|can.t claim|no compatible bridge window|failed to assign|collision|not reserved|firmware bug|ignored')"
dmesg | grep -iE 'pci|mmconfig|PNP0A0|ecam|GSI' | sed 's/^/dmesg: /'
`;

/**
 * What is wrong with the PCI_GUEST_SCRIPT output in `result` (its key=value lines): [] when the host
 * bridge 00:00.0 (8086:0d57, class 060000) and every function of `functions` (bdf such as '0000:00:01.0' ->
 * 'vendor:device' as sysfs prints them, e.g. '0x1af4:0x1042') were found, ECAM was accepted and dmesg
 * names no PCI resource problem.
 */
export function pciGuestProblems(
  result: ReadonlyMap<string, string>,
  functions: Record<string, string> = {},
): string[] {
  const out: string[] = [];
  const want = (key: string, value: string, what: string): void => {
    if (result.get(key) !== value) out.push(`${what}: ${key}=${result.get(key) ?? '(missing)'}, expected ${value}`);
  };
  want('pcidev-0000:00:00.0', '0x8086:0x0d57:0x060000', 'host bridge');
  for (const [bdf, ids] of Object.entries(functions)) {
    const got = result.get(`pcidev-${bdf}`);
    if (!got?.startsWith(`${ids}:`)) out.push(`function ${bdf}: ${got ?? '(missing)'}, expected ${ids}`);
  }
  want('pci-mmconfig', '1', 'MCFG/ECAM accepted as a motherboard resource');
  want('pci-hostbridge', '1', 'PCI0 root bus');
  want('pci-problems', '0', 'PCI resource problems in dmesg');
  return out;
}
