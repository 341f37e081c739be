import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NodeMetrics } from './metrics.js';

describe('NodeMetrics', () => {
  it('names each metric once, in Prometheus form, with help, and the README lists every one', () => {
    const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');
    const names = NodeMetrics.names();
    expect(new Set(names.map((m) => m.name)).size).toBe(names.length);
    for (const m of names) {
      expect(m.name).toMatch(/^mimic_[a-z_]+$/);
      if (m.kind === 'counter') expect(m.name).toMatch(/_total$/);
      expect(m.help.length).toBeGreaterThan(10);
      expect(readme, `README lacks ${m.name}`).toContain(`\`${m.name}\``);
    }
  });
});
