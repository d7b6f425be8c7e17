import { describe, expect, it } from 'vitest';
import { DockerfileErrorCode, parseDockerfile, parseStages, type Instruction } from '../../src/dockerfile/index.js';
import { expectDockerfileError } from './helpers.js';

const stagesOf = (text: string) => parseStages(parseDockerfile(text, { file: 'Dockerfile' }));
const only = (text: string): Instruction => stagesOf(`FROM a\n${text}\n`).stages[0]!.instructions[0]!;

describe('stages', () => {
  it('groups instructions under FROMs, with global ARGs apart', () => {
    const df = stagesOf('ARG V=1\nARG W\nFROM a:$V AS Build\nRUN x\nFROM --platform=linux/arm64 build\nCOPY --from=build /a /b\n');
    expect(df.globalArgs.flatMap((a) => a.args)).toEqual([{ key: 'V', default: '1' }, { key: 'W' }]);
    expect(df.stages.map((s) => [s.index, s.base, s.name, s.platform, s.instructions.map((i) => i.kind)])).toEqual([
      [0, 'a:$V', 'build', undefined, ['run']],
      [1, 'build', undefined, 'linux/arm64', ['copy']],
    ]);
  });

  it('rejects an instruction before the first FROM, at its line', () => {
    expectDockerfileError(() => stagesOf('ARG a\nRUN x\nFROM b\n'), DockerfileErrorCode.NO_STAGE, 2);
  });

  it('checks FROM arguments and stage names', () => {
    expectDockerfileError(() => stagesOf('FROM a b\n'), DockerfileErrorCode.INVALID_ARGUMENTS, 1);
    expectDockerfileError(() => stagesOf('FROM a AS 1x\n'), DockerfileErrorCode.INVALID_ARGUMENTS, 1);
    expectDockerfileError(() => stagesOf('FROM --plat=x a\n'), DockerfileErrorCode.UNKNOWN_FLAG, 1);
  });
});

describe('instructions', () => {
  it('rejects unknown instructions with a suggestion', () => {
    const e = expectDockerfileError(() => stagesOf('FROM a\nRUN x\nCOPPY a b\n'), DockerfileErrorCode.UNKNOWN_INSTRUCTION, 3);
    expect(e.message).toBe('Dockerfile:3: unknown instruction: COPPY (did you mean COPY?)');
    expect(expectDockerfileError(() => stagesOf('FORM a\n'), DockerfileErrorCode.UNKNOWN_INSTRUCTION, 1).message).toContain('did you mean FROM?');
  });

  it('types ENV and LABEL pairs, both forms', () => {
    expect(only('ENV A=1 B="two words"')).toMatchObject({ kind: 'env', env: [{ key: 'A', value: '1', legacy: false }, { key: 'B', value: '"two words"', legacy: false }] });
    expect(only('ENV A one two')).toMatchObject({ kind: 'env', env: [{ key: 'A', value: 'one two', legacy: true }] });
    expect(only('LABEL a=b')).toMatchObject({ kind: 'label', labels: [{ key: 'a', value: 'b' }] });
    expectDockerfileError(() => only('ENV =x'), DockerfileErrorCode.INVALID_ARGUMENTS, 2);
    expectDockerfileError(() => only('ENV a=1 b'), DockerfileErrorCode.INVALID_ARGUMENTS, 2);
    expectDockerfileError(() => only('ENV'), DockerfileErrorCode.INVALID_ARGUMENTS, 2);
  });

  it('types ARG with several names and defaults', () => {
    expect(only('ARG a b=2 c=')).toMatchObject({ kind: 'arg', args: [{ key: 'a' }, { key: 'b', default: '2' }, { key: 'c', default: '' }] });
    expectDockerfileError(() => only('ARG =1'), DockerfileErrorCode.INVALID_ARGUMENTS, 2);
  });

  it('types RUN: shell and exec form, mounts, network, security', () => {
    expect(only('RUN --mount=type=cache,target=/c --network=none --security=insecure make all')).toMatchObject({
      kind: 'run',
      args: ['make all'],
      shellForm: true,
      mounts: ['type=cache,target=/c'],
      network: 'none',
      security: 'insecure',
    });
    expect(only('RUN ["a", "b"]')).toMatchObject({ kind: 'run', args: ['a', 'b'], shellForm: false });
    const e = expectDockerfileError(() => only('RUN --mout=type=cache x'), DockerfileErrorCode.UNKNOWN_FLAG, 2);
    expect(e.reason).toBe('unknown flag: mout (did you mean mount?)');
    expectDockerfileError(() => only('RUN --network x'), DockerfileErrorCode.INVALID_FLAG, 2);
    expectDockerfileError(() => only('RUN --network=a --network=b x'), DockerfileErrorCode.INVALID_FLAG, 2);
  });

  it('types COPY and ADD with all their flags', () => {
    expect(only('COPY --from=build --chown=1:2 --chmod=644 --link --parents --exclude=*.md --exclude=x a b /dst/')).toMatchObject({
      kind: 'copy',
      from: 'build',
      chown: '1:2',
      chmod: '644',
      link: true,
      parents: true,
      exclude: ['*.md', 'x'],
      sources: ['a', 'b'],
      dest: '/dst/',
    });
    expect(only('ADD --keep-git-dir --checksum=sha256:abc --unpack=false --link=false http://x/y.tgz /y')).toMatchObject({
      kind: 'add',
      keepGitDir: true,
      checksum: 'sha256:abc',
      unpack: false,
      link: false,
    });
    expect(only('ADD a /b')).not.toHaveProperty('unpack');
    expectDockerfileError(() => only('COPY onlyone'), DockerfileErrorCode.INVALID_ARGUMENTS, 2);
    expect(expectDockerfileError(() => only('COPY --chmode=1 a b'), DockerfileErrorCode.UNKNOWN_FLAG, 2).reason).toContain('did you mean chmod?');
    expectDockerfileError(() => only('ADD --from=x a b'), DockerfileErrorCode.UNKNOWN_FLAG, 2);
    expectDockerfileError(() => only('COPY --keep-git-dir a b'), DockerfileErrorCode.UNKNOWN_FLAG, 2);
    expectDockerfileError(() => only('COPY --link=maybe a b'), DockerfileErrorCode.INVALID_FLAG, 2);
    expectDockerfileError(() => only('COPY --from a b'), DockerfileErrorCode.INVALID_FLAG, 2);
  });

  it('turns heredoc sources into inline files, chomped for <<-', () => {
    const df = stagesOf('FROM a\nCOPY <<-EOF <<"RAW" /dst/\n\tx\n\tEOF\n$y\nRAW\n');
    expect(df.stages[0]!.instructions[0]).toMatchObject({
      kind: 'copy',
      sources: [],
      contents: [
        { name: 'EOF', data: 'x\n', expand: true },
        { name: 'RAW', data: '$y\n', expand: false },
      ],
    });
    expectDockerfileError(() => stagesOf('FROM a\nCOPY a <<EOF\nx\nEOF\n'), DockerfileErrorCode.HEREDOC, 2);
  });

  it('types CMD, ENTRYPOINT, SHELL, and requires JSON for SHELL', () => {
    expect(only('CMD echo hi')).toMatchObject({ kind: 'cmd', args: ['echo hi'], shellForm: true });
    expect(only('ENTRYPOINT ["a"]')).toMatchObject({ kind: 'entrypoint', args: ['a'], shellForm: false });
    expect(only('SHELL ["bash", "-c"]')).toMatchObject({ kind: 'shell', shell: ['bash', '-c'] });
    expectDockerfileError(() => only('SHELL bash -c'), DockerfileErrorCode.INVALID_ARGUMENTS, 2);
    expectDockerfileError(() => only('SHELL []'), DockerfileErrorCode.INVALID_ARGUMENTS, 2);
  });

  it('types HEALTHCHECK with durations in nanoseconds', () => {
    expect(only('HEALTHCHECK NONE')).toMatchObject({ kind: 'healthcheck', test: ['NONE'] });
    expect(only('HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=1.5s --start-interval=2s --retries=3 CMD curl x')).toMatchObject({
      test: ['CMD-SHELL', 'curl x'],
      interval: 90e9,
      timeout: 500e6,
      startPeriod: 1.5e9,
      startInterval: 2e9,
      retries: 3,
    });
    expect(only('HEALTHCHECK CMD ["a", "b"]')).toMatchObject({ test: ['CMD', 'a', 'b'] });
    expectDockerfileError(() => only('HEALTHCHECK --interval=5 CMD x'), DockerfileErrorCode.INVALID_FLAG, 2);
    expectDockerfileError(() => only('HEALTHCHECK --interval=10us CMD x'), DockerfileErrorCode.INVALID_FLAG, 2);
    expectDockerfileError(() => only('HEALTHCHECK --retries=-1 CMD x'), DockerfileErrorCode.INVALID_FLAG, 2);
    expectDockerfileError(() => only('HEALTHCHECK CMD'), DockerfileErrorCode.INVALID_ARGUMENTS, 2);
    expectDockerfileError(() => only('HEALTHCHECK PING x'), DockerfileErrorCode.INVALID_ARGUMENTS, 2);
    expectDockerfileError(() => only('HEALTHCHECK NONE x'), DockerfileErrorCode.INVALID_ARGUMENTS, 2);
  });

  it('types the one-argument instructions and counts their arguments', () => {
    expect(only('WORKDIR /a b')).toMatchObject({ kind: 'workdir', path: '/a b' });
    expect(only('USER me:us')).toMatchObject({ kind: 'user', user: 'me:us' });
    expect(only('STOPSIGNAL SIGTERM')).toMatchObject({ kind: 'stopsignal', signal: 'SIGTERM' });
    expect(only('MAINTAINER Me <me@x>')).toMatchObject({ kind: 'maintainer', maintainer: 'Me <me@x>' });
    expect(only('EXPOSE 8080 80/udp')).toMatchObject({ kind: 'expose', ports: ['80/udp', '8080'] });
    expect(only('VOLUME ["/a", "/b"]')).toMatchObject({ kind: 'volume', volumes: ['/a', '/b'] });
    for (const bad of ['WORKDIR', 'USER', 'STOPSIGNAL', 'MAINTAINER', 'EXPOSE', 'VOLUME', 'VOLUME [""]']) {
      expectDockerfileError(() => only(bad), DockerfileErrorCode.INVALID_ARGUMENTS, 2);
    }
    expectDockerfileError(() => only('USER --x=1 me'), DockerfileErrorCode.UNKNOWN_FLAG, 2);
  });

  it('types ONBUILD and refuses the triggers BuildKit refuses', () => {
    expect(only('ONBUILD RUN echo hi')).toMatchObject({ kind: 'onbuild', expression: 'RUN echo hi' });
    for (const bad of ['ONBUILD ONBUILD RUN x', 'ONBUILD FROM x', 'ONBUILD MAINTAINER x']) {
      expectDockerfileError(() => only(bad), DockerfileErrorCode.INVALID_ONBUILD, 2);
    }
    expectDockerfileError(() => only('ONBUILD'), DockerfileErrorCode.INVALID_ARGUMENTS, 2);
  });
});

describe('instruction-level warnings', () => {
  const rules = (text: string): string[] => stagesOf(text).warnings.map((w) => `${w.rule}@${w.startLine}`);

  it('finds the BuildKit lint rules that need no expansion', () => {
    expect(rules('FROM a AS Build\nMAINTAINER me\nENV A b\nLABEL x y\nCMD run it\nCMD ["a"]\n')).toEqual([
      'StageNameCasing@1',
      'MaintainerDeprecated@2',
      'LegacyKeyValueFormat@3',
      'LegacyKeyValueFormat@4',
      'JSONArgsRecommended@5',
      'MultipleInstructionsDisallowed@5',
    ]);
    expect(rules('FROM a AS x\nFROM b as x\n')).toEqual(['DuplicateStageName@2', 'FromAsCasing@2']);
    expect(rules('FROM a\nrun x\nRUN y\nRUN z\n')).toEqual(['ConsistentInstructionCasing@2']);
    expect(rules('FROM a AS scratch\n')).toEqual(['ReservedStageName@1']);
    expect(rules('FROM a\nSHELL ["bash", "-c"]\nCMD x\n')).toEqual([]);
  });
});
