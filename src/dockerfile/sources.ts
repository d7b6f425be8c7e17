// What kind of source an ADD names, decided in one place for the planner (which checks flags
// against it) and the build engine (which fetches it).

/** Whether a source is an HTTP(S) URL, git repository or not. */
export function isHttpUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** Whether an ADD source is a git repository (BuildKit's `gitutil.ParseGitRef`, remote forms). */
export function isGitSource(source: string): boolean {
  return /^git@[^:]+:/.test(source) || /^(?:git|ssh):\/\//.test(source) || /^https?:\/\/[^#?]+\.git(?:[#?].*)?$/.test(source) || /^https?:\/\/[^#]+\.git#/.test(source);
}

/** Whether an ADD source is a file to download over HTTP(S) (a URL that is not a git repository). */
export function isHttpSource(source: string): boolean {
  return isHttpUrl(source) && !isGitSource(source);
}
