import { normalizeArchivePath, type LayerEntry, type TarEntry } from '../../layers/index.js';

/**
 * Converting what GNU tar read from a host tree into layer entries. Only `security.capability`
 * is carried over among the xattrs, as Docker and containerd do: other attributes (SELinux
 * labels, overlayfs bookkeeping such as `trusted.overlay.origin`) describe the host, not the image.
 */
export const LAYER_XATTRS = ['security.capability'] as const;

export function layerEntryOf(entry: TarEntry, path: string): LayerEntry {
  const h = entry.header;
  // Called for every file of a RUN's changes (tens of thousands for a package install): no
  // spreading, no intermediate objects.
  let xattrs: Record<string, Uint8Array> | undefined;
  for (const name of LAYER_XATTRS) {
    const value = h.xattrs[name];
    if (value !== undefined) (xattrs ??= {})[name] = value;
  }
  const mode = h.mode & 0o7777;
  switch (h.type) {
    case 'file': {
      if (h.size === 0) return { path, type: 'file', mode, uid: h.uid, gid: h.gid, mtime: h.mtime, xattrs, size: 0 };
      const content = entry.content;
      return { path, type: 'file', mode, uid: h.uid, gid: h.gid, mtime: h.mtime, xattrs, size: h.size, open: () => content };
    }
    case 'hardlink':
      return { path, type: 'hardlink', mode, uid: h.uid, gid: h.gid, mtime: h.mtime, xattrs, size: 0, linkname: normalizeArchivePath(h.linkname) };
    case 'symlink':
      return { path, type: 'symlink', mode, uid: h.uid, gid: h.gid, mtime: h.mtime, xattrs, size: 0, linkname: h.linkname };
    case 'char-device':
    case 'block-device':
      return { path, type: h.type, mode, uid: h.uid, gid: h.gid, mtime: h.mtime, xattrs, size: 0, devmajor: h.devmajor, devminor: h.devminor };
    default:
      return { path, type: h.type, mode, uid: h.uid, gid: h.gid, mtime: h.mtime, xattrs, size: 0 };
  }
}

/** An OCI whiteout (`.wh.NAME` or `.wh..wh..opq`) as Docker writes it: an empty file, mode 0, root's. */
export function whiteoutEntry(path: string, mtime: number): LayerEntry {
  return { path, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime };
}
