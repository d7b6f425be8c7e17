import { normalizeArchivePath, type LayerEntry, type TarEntry } from '../../layers/index.js';

/**
 * Converting what GNU tar read from a host tree into layer entries. Only `security.capability`
 * is carried over among the xattrs, as Docker and containerd do: other attributes (SELinux
 * labels, overlayfs bookkeeping such as `trusted.overlay.origin`) describe the host, not the image.
 */
export const LAYER_XATTRS = ['security.capability'] as const;

export function layerEntryOf(entry: TarEntry, path: string): LayerEntry {
  const h = entry.header;
  const xattrs: Record<string, Uint8Array> = {};
  for (const name of LAYER_XATTRS) if (h.xattrs[name] !== undefined) xattrs[name] = h.xattrs[name];
  const common = {
    path,
    mode: h.mode & 0o7777,
    uid: h.uid,
    gid: h.gid,
    mtime: h.mtime,
    xattrs: Object.keys(xattrs).length > 0 ? xattrs : undefined,
  };
  switch (h.type) {
    case 'file':
      return h.size === 0 ? { ...common, type: 'file', size: 0 } : { ...common, type: 'file', size: h.size, open: () => entry.content };
    case 'hardlink':
      return { ...common, type: 'hardlink', size: 0, linkname: normalizeArchivePath(h.linkname) };
    case 'symlink':
      return { ...common, type: 'symlink', size: 0, linkname: h.linkname };
    case 'char-device':
    case 'block-device':
      return { ...common, type: h.type, size: 0, devmajor: h.devmajor, devminor: h.devminor };
    default:
      return { ...common, type: h.type, size: 0 };
  }
}

/** An OCI whiteout (`.wh.NAME` or `.wh..wh..opq`) as Docker writes it: an empty file, mode 0, root's. */
export function whiteoutEntry(path: string, mtime: number): LayerEntry {
  return { path, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime };
}
