/**
 * The migration plugin's functions (issue 14): pause and resume, snapshots to a directory and restores from one,
 * live migration over TCP or a Unix socket. The CLI (`vmm snapshot|restore|migrate|receive`, cli.ts) and the API
 * call these.
 */
export { pauseVm, resumeVm } from './pause.js';
export { snapshotVm, type SnapshotOptions, type SnapshotResult } from './snapshot.js';
export { restoreVm, type RestoreOptions } from './restore.js';
export { runRestored, type RunRestoredOptions } from './run-restored.js';
export { sendMigration, type SendOptions, type SendResult, type MigrationProgress } from './send.js';
export { receiveMigration, runReceived, type ReceiveOptions } from './receive.js';
export { ASSEMBLED_VM } from '../../core/vmm/assemble.js';
export { controlRequest, type ControlRequest } from './control.js';
export { restoreClones, runClones, type CloneInfo, type CloneOptions } from './clone.js';
export { MigrationError, type MigrationErrorKind } from './errors.js';
