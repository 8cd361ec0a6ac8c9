/** The host's KVM kind: the kvm plugin owns the detection (its host check uses it); the sandbox reads it too. */
export * from '../../plugins/kvm/host-kind.js';
