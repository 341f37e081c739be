export const DATABASES: readonly { name: string; mode: 'wal' | 'delete' }[];
export type DatabaseCheck = { ok: true; n: number } | { ok: false; problem: string; n?: undefined };
/** Whether the database at `path` opens, passes integrity_check and is one committed state. */
export function checkDatabase(path: string): DatabaseCheck;
