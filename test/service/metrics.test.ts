import { describe, expect, it } from 'vitest';
import { MetricsRegistry } from '../../src/service/index.js';

describe('MetricsRegistry (Prometheus text format 0.0.4)', () => {
  it('renders counters, gauges and histograms, families sorted by name', () => {
    const metrics = new MetricsRegistry();
    const done = metrics.counter('gitpod_image_builder_builds_done_total', 'Builds done.', ['success']);
    const started = metrics.counter('gitpod_image_builder_builds_started_total', 'Builds started.');
    const running = metrics.gauge('a_running', 'Running now.');
    const duration = metrics.histogram('b_duration_seconds', 'Duration.', [1, 5], ['success']);
    started.inc();
    started.inc(undefined, 2);
    done.inc({ success: 'true' });
    done.inc({ success: 'false' });
    done.inc({ success: 'true' });
    running.inc();
    running.inc();
    running.dec();
    duration.observe(0.5, { success: 'true' });
    duration.observe(3, { success: 'true' });
    duration.observe(10, { success: 'true' });
    expect(metrics.render()).toBe(
      [
        '# HELP a_running Running now.',
        '# TYPE a_running gauge',
        'a_running 1',
        '# HELP b_duration_seconds Duration.',
        '# TYPE b_duration_seconds histogram',
        'b_duration_seconds_bucket{success="true",le="1"} 1',
        'b_duration_seconds_bucket{success="true",le="5"} 2',
        'b_duration_seconds_bucket{success="true",le="+Inf"} 3',
        'b_duration_seconds_sum{success="true"} 13.5',
        'b_duration_seconds_count{success="true"} 3',
        '# HELP gitpod_image_builder_builds_done_total Builds done.',
        '# TYPE gitpod_image_builder_builds_done_total counter',
        'gitpod_image_builder_builds_done_total{success="false"} 1',
        'gitpod_image_builder_builds_done_total{success="true"} 2',
        '# HELP gitpod_image_builder_builds_started_total Builds started.',
        '# TYPE gitpod_image_builder_builds_started_total counter',
        'gitpod_image_builder_builds_started_total 3',
        '',
      ].join('\n'),
    );
  });

  it('escapes help text and label values', () => {
    const metrics = new MetricsRegistry();
    metrics.counter('x_total', 'a \\ b\nc "quoted"', ['path']).inc({ path: 'C:\\dir\n"x"' });
    expect(metrics.render()).toBe('# HELP x_total a \\\\ b\\nc "quoted"\n# TYPE x_total counter\nx_total{path="C:\\\\dir\\n\\"x\\""} 1\n');
  });

  it('returns the same metric for the same registration, refuses a conflicting one', () => {
    const metrics = new MetricsRegistry();
    const a = metrics.counter('c_total', 'c');
    expect(metrics.counter('c_total', 'c')).toBe(a);
    expect(() => metrics.gauge('c_total', 'c')).toThrow(/already registered/);
    expect(() => metrics.counter('c_total', 'c', ['x'])).toThrow(/already registered/);
  });

  it('validates names, labels and counter increments', () => {
    const metrics = new MetricsRegistry();
    expect(() => metrics.counter('bad-name', 'x')).toThrow(/invalid metric name/);
    expect(() => metrics.counter('ok_total', 'x', ['__reserved'])).toThrow(/invalid label name/);
    expect(() => metrics.histogram('h', 'x', [1], ['le'])).toThrow(/reserved/);
    const c = metrics.counter('c_total', 'x', ['a']);
    expect(() => c.inc({ b: '1' })).toThrow(/no label "b"/);
    expect(() => c.inc({}, -1)).toThrow(/only increase/);
  });

  it('renders nothing for an empty registry', () => {
    expect(new MetricsRegistry().render()).toBe('');
  });
});
