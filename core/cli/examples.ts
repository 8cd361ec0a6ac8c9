/** Examples shown after each command's `--help` (and the program's), as a newcomer would type them. */
export const EXAMPLES: Readonly<Record<string, readonly [string, string][]>> = {
  vmm: [
    ['vmm run hosts/micro.yaml', 'boot the micro host (the guest kit: a Debian kernel and a busybox initramfs)'],
    ['vmm run --kernel vmlinux --initramfs initrd.img --memory 512M', 'boot a kernel without writing a config'],
    ['vmm validate vm.yaml', 'check a config and everything it names; starts nothing'],
    ['vmm plugins virtio-blk', "a plugin's config keys, types, defaults and descriptions"],
    ['vmm schema > vmm-config.schema.json', 'a JSON Schema of the config, for editors'],
  ],
  run: [
    ['vmm run hosts/micro.yaml', 'run a configured VM (Ctrl-A x quits the serial console)'],
    ['vmm run --sandbox hosts/micro.yaml', 'the same inside the nested sandbox (hosts whose KVM cannot boot Linux)'],
    [
      'vmm run --kernel bzImage --initramfs initrd.img --cmdline "console=ttyS0" --cpus 2 --memory 1G',
      'the quick form: the micro host built from flags',
    ],
    ['vmm run --kernel vmlinux --disk path=rootfs.img --disk path=data.img,readonly', 'with two disks'],
    ['vmm run --kernel vmlinux --net tap=tap0 --print-config', 'print the YAML the flags make (vmm run takes it back)'],
    ['vmm run vm.yaml --set machine.memory=2G --set serial.console.kind=file', 'override keys of a config'],
    ['vmm run vm.yaml --log-level debug --log-file vmm.log', 'more logging, to a file'],
  ],
  validate: [
    ['vmm validate hosts/micro.yaml', 'every check vmm run makes before it starts'],
    ['vmm validate vm.yaml --set machine.vcpus=4', 'with overrides, as vmm run would take them'],
    ['vmm validate --kernel vmlinux --memory 1G', 'the quick form'],
  ],
  plugins: [
    ['vmm plugins', 'every plugin found (this repository, node_modules)'],
    ['vmm plugins serial', 'one plugin: its manifest and config keys with types, defaults and descriptions'],
    ['vmm plugins --config vm.yaml', 'also the plugins a config names by path'],
  ],
  schema: [
    ['vmm schema > vmm-config.schema.json', 'the whole config, plugin configs included, as JSON Schema'],
    ['vmm schema --plugin virtio-blk', "one plugin's config block"],
  ],
};

/** The "Examples:" block for `command` ('vmm' for the program), or '' when there is none. */
export function examplesFor(command: string): string {
  const list = EXAMPLES[command];
  if (!list?.length) return '';
  const width = Math.min(44, Math.max(...list.map(([c]) => c.length)));
  const lines = list.map(([c, what]) =>
    c.length > width ? `  $ ${c}\n  ${' '.repeat(width + 4)}${what}` : `  $ ${c.padEnd(width)}  ${what}`,
  );
  return `\nExamples:\n${lines.join('\n')}\n`;
}
