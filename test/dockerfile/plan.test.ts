import { describe, expect, it } from 'vitest';
import { DockerfileErrorCode, planBuild, type BuildPlan, type PlanOptions, type PlanStep } from '../../src/dockerfile/index.js';
import { expectDockerfileError } from './helpers.js';

const plan = (text: string, options: PlanOptions = {}): BuildPlan => planBuild(text, { buildPlatform: 'linux/amd64', ...options });
const steps = (p: BuildPlan, stage = p.stages.length - 1): PlanStep[] => [...p.stages[stage]!.steps];
const step = <K extends PlanStep['kind']>(p: BuildPlan, kind: K, n = 0): Extract<PlanStep, { kind: K }> =>
  p.stages.flatMap((s) => s.steps).filter((s): s is Extract<PlanStep, { kind: K }> => s.kind === kind)[n]!;

describe('ARG scoping', () => {
  it('expands FROM with global ARGs only, and hides them in stages unless redeclared', () => {
    const p = plan('ARG TAG=3.19\nARG OTHER\nFROM alpine:$TAG\nRUN echo\nARG TAG\nRUN echo\nARG OTHER\n');
    expect(p.stages[0]!.base).toEqual({ kind: 'image', ref: 'alpine:3.19', reference: 'docker.io/library/alpine:3.19' });
    const [run1, arg, run2, other] = steps(p);
    expect(run1).toMatchObject({ kind: 'run', env: [] });
    expect(arg).toMatchObject({ kind: 'arg', args: [{ name: 'TAG', value: '3.19' }] });
    expect(run2).toMatchObject({ kind: 'run', env: ['TAG=3.19'], createdBy: 'RUN |1 TAG=3.19 /bin/sh -c echo # buildkit' });
    // A global ARG without a value gives the stage ARG none either.
    expect(other).toMatchObject({ kind: 'arg', args: [{ name: 'OTHER' }] });
  });

  it('lets --build-arg override global and stage defaults, and defaults see earlier ARGs', () => {
    const p = plan('ARG V=1\nFROM a:$V\nARG V\nARG W=${V}-w X=x\nRUN echo\n', { buildArgs: { V: '2', X: 'over' } });
    expect(p.stages[0]!.base).toMatchObject({ ref: 'a:2' });
    expect(step(p, 'run').env).toEqual(['V=2', 'W=2-w', 'X=over']);
  });

  it('orders ARG and ENV: ENV after ARG wins, an ARG after ENV wins', () => {
    const p = plan('FROM a\nARG A=arg\nENV A=env B=env\nARG B=arg\nRUN x\n', { buildArgs: { A: 'cli' } });
    expect(step(p, 'run').env).toEqual(['A=env', 'B=arg']);
    expect(step(p, 'env').env).toEqual([
      ['A', 'env'],
      ['B', 'env'],
    ]);
  });

  it('carries ARGs and ENV into a stage built FROM another stage', () => {
    const p = plan('FROM a AS base\nARG V=1\nENV E=e\nFROM base\nRUN echo $V\n');
    expect(step(p, 'run', 0).env).toEqual(['V=1', 'E=e']);
    expect(p.stages[1]!.base).toEqual({ kind: 'stage', index: 0 });
  });

  it('provides the automatic platform ARGs globally and on declaration', () => {
    const p = plan('FROM --platform=$BUILDPLATFORM a AS b\nARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDARCH\nRUN x\n', {
      platform: 'linux/arm/v7',
    });
    expect(p.stages[0]!.platform).toBe('linux/amd64');
    expect(step(p, 'run').env).toEqual(['TARGETPLATFORM=linux/arm/v7', 'TARGETOS=linux', 'TARGETARCH=arm', 'TARGETVARIANT=v7', 'BUILDARCH=amd64']);
    expect(plan('FROM a\nRUN x\n', { platform: 'linux/aarch64' }).platform).toBe('linux/arm64');
    expect(plan('FROM a\nARG TARGETARCH\nRUN x\n', { buildArgs: { TARGETARCH: 'riscv64' } }).stages[0]!.steps[0]).toMatchObject({
      args: [{ name: 'TARGETARCH', value: 'riscv64' }],
    });
  });

  it('passes proxy build args to RUN without an ARG, apart from the recorded env', () => {
    const p = plan('FROM a\nRUN x\n', { buildArgs: { HTTPS_PROXY: 'http://proxy:3128', FOO: '1' } });
    expect(p.proxyEnv).toEqual(['HTTPS_PROXY=http://proxy:3128']);
    expect(step(p, 'run').env).toEqual([]);
    expect(p.unusedBuildArgs).toEqual(['FOO']);
  });

  it('needs at least one stage', () => {
    expectDockerfileError(() => plan('ARG A=1\n'), DockerfileErrorCode.NO_STAGE);
  });

  it('reads SOURCE_DATE_EPOCH and rejects a bad one', () => {
    expect(plan('FROM a\n', { buildArgs: { SOURCE_DATE_EPOCH: '1700000000' } }).sourceDateEpoch).toBe(1700000000);
    expectDockerfileError(() => plan('FROM a\n', { buildArgs: { SOURCE_DATE_EPOCH: 'yesterday' } }), DockerfileErrorCode.INVALID_ARGUMENTS);
  });
});

describe('stages, targets and dependencies', () => {
  const df = [
    'FROM alpine AS base', // 1
    'FROM base AS build', // 2
    'RUN --mount=type=cache,target=/c --mount=from=tools,target=/t make', // 3
    'FROM golang AS tools', // 4
    'FROM scratch AS unused', // 5
    'FROM base AS final', // 6
    'COPY --from=build /out /out', // 7
    'COPY --from=0 /etc/os-release /', // 8
    'COPY --from=busybox:1.36 /bin/busybox /bin/', // 9
  ].join('\n');

  it('keeps only the stages the target needs, with their dependency graph', () => {
    const p = plan(df);
    expect(p.target).toBe(4);
    expect(p.stages.map((s) => [s.index, s.name, s.dependsOn])).toEqual([
      [0, 'base', []],
      [1, 'build', [0, 2]],
      [2, 'tools', []],
      [4, 'final', [0, 1]],
    ]);
    const copies = p.stages[3]!.steps;
    expect(copies.map((s) => (s.kind === 'copy' ? s.from : undefined))).toEqual([
      { kind: 'stage', index: 1 },
      { kind: 'stage', index: 0 },
      { kind: 'image', ref: 'busybox:1.36', reference: 'docker.io/library/busybox:1.36' },
    ]);
    expect(plan(df, { target: 'TOOLS' }).stages.map((s) => s.index)).toEqual([2]);
    expect(plan(df, { target: 'unused' }).stages.map((s) => s.base)).toEqual([{ kind: 'scratch' }]);
  });

  it('fails on an unknown target with a suggestion', () => {
    expect(expectDockerfileError(() => plan(df, { target: 'buidl' }), DockerfileErrorCode.TARGET_NOT_FOUND).message).toContain('did you mean build?');
  });

  it('detects cycles through COPY --from and RUN --mount from=', () => {
    const e = expectDockerfileError(() => plan('FROM a AS one\nCOPY --from=two /x /x\nFROM a AS two\nRUN --mount=from=one,target=/m x\n'), DockerfileErrorCode.CIRCULAR_DEPENDENCY, 2);
    expect(e.reason).toBe('circular dependency detected on stage: one');
    expectDockerfileError(() => plan('FROM a\nCOPY --from=0 /x /y\n'), DockerfileErrorCode.CIRCULAR_DEPENDENCY, 2);
  });

  it('only refers back to earlier stages in FROM', () => {
    const p = plan('FROM later AS first\nFROM a AS later\nCOPY --from=first / /\n');
    expect(p.stages[0]!.base).toMatchObject({ kind: 'image', ref: 'later' });
  });

  it('rejects bad --from values and bad base names', () => {
    expectDockerfileError(() => plan('FROM a\nCOPY --from=7 /x /y\n'), DockerfileErrorCode.INVALID_STAGE_REFERENCE, 2);
    expectDockerfileError(() => plan('ARG X=a\nFROM a\nCOPY --from=$X /x /y\n'), DockerfileErrorCode.INVALID_STAGE_REFERENCE, 3);
    expectDockerfileError(() => plan('FROM a\nCOPY --from=Not_Valid /x /y\n'), DockerfileErrorCode.INVALID_REFERENCE, 2);
    expectDockerfileError(() => plan('FROM a\nRUN --mount=from=$X,target=/x y\n'), DockerfileErrorCode.INVALID_MOUNT, 2);
    expectDockerfileError(() => plan('ARG B\nFROM $B\n'), DockerfileErrorCode.INVALID_REFERENCE, 2);
    expectDockerfileError(() => plan('FROM Upper\n'), DockerfileErrorCode.INVALID_REFERENCE, 1);
    expectDockerfileError(() => plan('FROM --platform=linux a\n'), DockerfileErrorCode.INVALID_PLATFORM, 1);
    expectDockerfileError(() => plan('FROM a\n', { platform: 'nope' }), DockerfileErrorCode.INVALID_PLATFORM);
    expectDockerfileError(() => plan('FROM a\nRUN ${X:?needed} \nENV A=${X:?needed}\n'), DockerfileErrorCode.EXPANSION, 3);
  });
});

describe('steps', () => {
  it('expands the words the Dockerfile reference says, and not RUN/CMD/ENTRYPOINT', () => {
    const p = plan(
      'FROM a\nARG D=/data U=app P=8080 S=SIGTERM\nENV HOME=/home/$U\nWORKDIR $HOME\nUSER $U\nEXPOSE $P ${P}/udp\nVOLUME $D\nSTOPSIGNAL $S\nLABEL "k $U"="v $D"\nCOPY --chown=$U a${P} $D/\nCMD echo $U\nENTRYPOINT ["x", "$U"]\n',
    );
    expect(step(p, 'workdir')).toMatchObject({ path: '/home/app', workdir: '/home/app', createdBy: 'WORKDIR /home/app' });
    expect(step(p, 'user').user).toBe('app');
    expect(step(p, 'expose')).toMatchObject({ ports: ['8080/tcp', '8080/udp'], createdBy: 'EXPOSE map[8080/tcp:{} 8080/udp:{}]' });
    expect(step(p, 'volume')).toMatchObject({ volumes: ['/data'], createdBy: 'VOLUME [/data]' });
    expect(step(p, 'stopsignal').signal).toBe('SIGTERM');
    expect(step(p, 'label').labels).toEqual([['k app', 'v /data']]);
    expect(step(p, 'copy')).toMatchObject({ chown: 'app', sources: ['a8080'], dest: '/data/', destPath: '/data/', createdBy: 'COPY a8080 /data/ # buildkit' });
    expect(step(p, 'cmd')).toMatchObject({ argv: ['/bin/sh', '-c', 'echo $U'], createdBy: 'CMD ["/bin/sh" "-c" "echo $U"]' });
    expect(step(p, 'entrypoint')).toMatchObject({ argv: ['x', '$U'], resetsCmd: false });
  });

  it('resolves relative WORKDIR and COPY destinations against the working directory', () => {
    const p = plan('FROM a\nWORKDIR /app\nWORKDIR src/../lib\nCOPY x .\nCOPY y sub/\nCOPY z file\n');
    expect(step(p, 'workdir', 1).workdir).toBe('/app/lib');
    expect([0, 1, 2].map((i) => step(p, 'copy', i).destPath)).toEqual(['/app/lib/', '/app/lib/sub/', '/app/lib/file']);
  });

  it('uses SHELL for shell forms and records it', () => {
    const p = plan('FROM a\nSHELL ["/bin/bash", "-eo", "pipefail", "-c"]\nRUN x | y\nENTRYPOINT z\n');
    expect(step(p, 'run').argv).toEqual(['/bin/bash', '-eo', 'pipefail', '-c', 'x | y']);
    expect(step(p, 'entrypoint')).toMatchObject({ argv: ['/bin/bash', '-eo', 'pipefail', '-c', 'z'], resetsCmd: true });
    expect(step(p, 'shell').createdBy).toBe('SHELL [/bin/bash -eo pipefail -c]');
  });

  it('turns RUN heredocs into what the shell runs', () => {
    const p = plan('FROM a\nRUN <<EOF\necho one\nEOF\nRUN <<-EOF\n\t#!/usr/bin/env python3\n\tprint(1)\n\tEOF\nRUN cat <<A <<B\n1\nA\n2\nB\n');
    expect(step(p, 'run', 0)).toMatchObject({ argv: ['/bin/sh', '-c', 'echo one\n'], scripts: [] });
    expect(step(p, 'run', 1)).toMatchObject({
      argv: ['/bin/sh', '-c', '/dev/pipes/EOF'],
      scripts: [{ name: 'EOF', content: '#!/usr/bin/env python3\nprint(1)\n' }],
    });
    expect(step(p, 'run', 2).argv).toEqual(['/bin/sh', '-c', 'cat <<A <<B\n1\nA\n2\nB']);
  });

  it('expands COPY heredocs unless the delimiter is quoted, keeping quotes', () => {
    const p = plan('FROM a\nARG N=x\nCOPY <<EOF <<"RAW" /d/\nname="$N"\nEOF\nname="$N"\nRAW\n');
    expect(step(p, 'copy').contents).toEqual([
      { name: 'EOF', content: 'name="x"\n' },
      { name: 'RAW', content: 'name="$N"\n' },
    ]);
    expect(step(p, 'copy').createdBy).toBe('COPY <<EOF <<RAW /d/ # buildkit');
  });

  it('parses RUN mounts into typed records with BuildKit defaults', () => {
    const p = plan(
      'FROM a AS tools\nFROM a\nWORKDIR /w\nARG ID=mycache\n' +
        'RUN --mount=type=cache,id=$ID,target=/var/cache,sharing=locked,uid=1000,mode=0700 ' +
        '--mount=target=src,from=tools,source=/usr/bin,rw ' +
        '--mount=type=tmpfs,target=/tmp,size=64m ' +
        '--mount=type=secret,id=aws,required ' +
        '--mount=type=secret,id=tok,env=TOKEN ' +
        '--mount=type=ssh --network=host x\n',
    );
    const run = step(p, 'run');
    expect(run.network).toBe('host');
    expect(run.mounts).toEqual([
      { type: 'cache', target: '/var/cache', id: 'mycache', sharing: 'locked', source: '/', from: { kind: 'scratch' }, readOnly: false, uid: 1000, gid: 0, mode: 0o700 },
      { type: 'bind', target: '/w/src', source: '/usr/bin', from: { kind: 'stage', index: 0 }, readOnly: false },
      { type: 'tmpfs', target: '/tmp', sizeLimit: 64 * 1024 * 1024 },
      { type: 'secret', id: 'aws', target: '/run/secrets/aws', required: true, uid: 0, gid: 0, mode: 0o400 },
      { type: 'secret', id: 'tok', env: 'TOKEN', required: false, uid: 0, gid: 0, mode: 0o400 },
      { type: 'ssh', id: 'default', required: false, uid: 0, gid: 0, mode: 0o600 },
    ]);
    expect(p.stages[1]!.dependsOn).toEqual([0]);
  });

  it('rejects invalid mounts at their line', () => {
    for (const bad of [
      'type=volume,target=/x',
      'type=cache,target=/x,sharing=sometimes',
      'type=bind,target=/x,mode=0700',
      'type=cache,target=/x,tpye=1',
      'type=secret',
      'type=tmpfs,target=/',
      'type=bind,target=/x,"unterminated',
      'type=cache,target=/x,uid=me',
      'type=bind,target=/x,size=1m',
    ]) {
      expectDockerfileError(() => plan(`FROM a\n\nRUN --mount=${bad} x\n`), DockerfileErrorCode.INVALID_MOUNT, 3);
    }
    const e = expectDockerfileError(() => plan('FROM a\nRUN --mount=type=cahce,target=/x y\n'), DockerfileErrorCode.INVALID_MOUNT, 2);
    expect(e.reason).toContain('did you mean cache?');
    expectDockerfileError(() => plan('FROM a\nRUN --network=bridge x\n'), DockerfileErrorCode.INVALID_FLAG, 2);
    expectDockerfileError(() => plan('FROM a\nRUN --security=root x\n'), DockerfileErrorCode.INVALID_FLAG, 2);
  });

  it('checks values the image config holds', () => {
    expectDockerfileError(() => plan('FROM a\nEXPOSE 80/http\n'), DockerfileErrorCode.INVALID_ARGUMENTS, 2);
    expectDockerfileError(() => plan('FROM a\nEXPOSE 70000\n'), DockerfileErrorCode.INVALID_ARGUMENTS, 2);
    expectDockerfileError(() => plan('FROM a\nSTOPSIGNAL SIGNOPE\n'), DockerfileErrorCode.INVALID_ARGUMENTS, 2);
    expect(step(plan('FROM a\nSTOPSIGNAL 9\n'), 'stopsignal').signal).toBe('9');
    expectDockerfileError(() => plan('FROM a\nCOPY --chmod=999 a b\n'), DockerfileErrorCode.INVALID_FLAG, 2);
    expect(step(plan('FROM a\nCOPY --chmod=u+x,g-w a b\n'), 'copy').chmod).toBe('u+x,g-w');
    expectDockerfileError(() => plan('FROM a\nCOPY http://x/y /y\n'), DockerfileErrorCode.INVALID_ARGUMENTS, 2);
    expectDockerfileError(() => plan('FROM a\nADD --checksum=sha256:00 local /y\n'), DockerfileErrorCode.INVALID_FLAG, 2);
    expect(step(plan('FROM a\nADD --checksum=sha256:00 https://x/y.tgz /y\n'), 'add').checksum).toBe('sha256:00');
  });

  it('records HEALTHCHECK as the image config holds it', () => {
    const h = step(plan('FROM a\nHEALTHCHECK --interval=5s --retries=3 CMD ["curl", "x"]\n'), 'healthcheck');
    expect(h).toMatchObject({ test: ['CMD', 'curl', 'x'], interval: 5e9, retries: 3 });
    expect(h.createdBy).toBe(`HEALTHCHECK &{["CMD" "curl" "x"] "5s" "0s" "0s" "0s" '\\x03'}`);
  });

  it('is plain serialisable data', () => {
    const p = plan('FROM a\nRUN --mount=type=cache,target=/c x\nCOPY <<EOF /f\nhi\nEOF\n');
    expect(JSON.parse(JSON.stringify(p))).toEqual(p);
  });
});

describe('base image configs and ONBUILD', () => {
  it('uses a supplied base config for expansion, workdir and shell', () => {
    const df = 'FROM golang:1.22\nWORKDIR $GOPATH/src\nRUN go build\nCOPY . rel/\n';
    const blind = plan(df);
    expect(blind.stages[0]!.baseConfigKnown).toBe(false);
    expect(step(blind, 'workdir').workdir).toBe('/src');
    expect(blind.warnings).toEqual([]);
    const known = plan(df, {
      baseImages: { 'golang:1.22': { Env: ['GOPATH=/go'], WorkingDir: '/go', Shell: ['/bin/bash', '-c'] } },
    });
    expect(known.stages[0]!.baseConfigKnown).toBe(true);
    expect(step(known, 'workdir').workdir).toBe('/go/src');
    expect(step(known, 'run')).toMatchObject({ argv: ['/bin/bash', '-c', 'go build'], env: ['GOPATH=/go', `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`] });
    expect(step(known, 'copy').destPath).toBe('/go/src/rel/');
  });

  it('runs the base image ONBUILD triggers first, located at the FROM line', () => {
    const p = plan('FROM a AS tools\nFROM base\nRUN mine\n', {
      baseImages: { base: { OnBuild: ['COPY --from=tools /t /t', 'RUN echo triggered'] } },
    });
    expect(steps(p).map((s) => [s.kind, s.onbuild ?? false, s.startLine])).toEqual([
      ['copy', true, 2],
      ['run', true, 2],
      ['run', false, 3],
    ]);
    expect(p.stages.map((s) => s.index)).toEqual([0, 1]);
  });

  it('runs the ONBUILD instructions of a base stage in the stages built from it', () => {
    const p = plan('FROM a AS base\nONBUILD RUN echo child\nRUN parent\nFROM base\nRUN own\n');
    expect(steps(p, 0).map((s) => s.kind)).toEqual(['onbuild', 'run']);
    expect(steps(p, 1).map((s) => [s.kind, s.onbuild ?? false])).toEqual([
      ['run', true],
      ['run', false],
    ]);
  });

  it('rejects a bad trigger, naming it, at the FROM line', () => {
    const e = expectDockerfileError(
      () => plan('\nFROM base\n', { baseImages: { base: { OnBuild: ['RUN --bogus x'] } } }),
      DockerfileErrorCode.UNKNOWN_FLAG,
      2,
    );
    expect(e.reason).toContain('ONBUILD trigger "RUN --bogus x"');
    expectDockerfileError(() => plan('FROM base\n', { baseImages: { base: { OnBuild: ['FROM x'] } } }), DockerfileErrorCode.INVALID_ONBUILD, 1);
  });
});

describe('warnings', () => {
  const rules = (p: BuildPlan): string[] => p.warnings.map((w) => `${w.rule}@${w.startLine}`);

  it('reports undefined variables with a suggestion, when the environment is fully known', () => {
    const p = plan('FROM scratch\nARG VERSION=1\nCOPY app-$VERISON /app\n');
    expect(p.warnings).toEqual([expect.objectContaining({ rule: 'UndefinedVar', startLine: 3, message: "Usage of undefined variable '$VERISON' (did you mean $VERSION?)" })]);
  });

  it('reports FROM arguments that are not declared, relative workdirs, secrets and redundant platforms', () => {
    const p = plan('FROM a${NOPE} AS x\nFROM --platform=$TARGETPLATFORM scratch\nWORKDIR rel\nARG API_TOKEN\nENV PUBLIC_KEY=1\n', {
      buildArgs: { NOPE: 'a' },
    });
    expect(rules(p)).toEqual(['UndefinedArgInFrom@1', 'RedundantTargetPlatform@2', 'WorkdirRelativePath@3', 'SecretsUsedInArgOrEnv@4']);
  });

  it('honours # check=skip and turns warnings into an error with error=true', () => {
    expect(rules(plan('# check=skip=MaintainerDeprecated\nFROM a\nMAINTAINER me\n'))).toEqual([]);
    expect(rules(plan('# check=skip=all\nFROM a\nMAINTAINER me\nENV A b\n'))).toEqual([]);
    const e = expectDockerfileError(() => plan('# check=error=true\nFROM a\nENV A b\n'), DockerfileErrorCode.LINT, 3);
    expect(e.reason).toContain('LegacyKeyValueFormat');
  });
});
