// Image references in Docker's form, normalised the way docker/distribution's
// "reference" grammar does: `golang` is `docker.io/library/golang:latest`.
import { ImageError } from './errors.js';

export const DOCKER_HUB = 'docker.io';
export const DEFAULT_TAG = 'latest';

export interface ImageReference {
  /** Registry host as written by the user after normalisation: docker.io, ghcr.io, 127.0.0.1:5000, localhost. */
  registry: string;
  /** Repository path inside the registry: library/golang, org/repo. */
  repository: string;
  /** Tag; `latest` when neither tag nor digest was given. */
  tag?: string;
  /** Digest `algorithm:hex`, when pinned. */
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;

export function isDigest(s: string): boolean {
  return DIGEST.test(s);
}

/** Parse and normalise a reference. Throws ImageError(BAD_REFERENCE) with the input in the message. */
export function parseReference(input: string): ImageReference {
  const bad = (why: string) => new ImageError('BAD_REFERENCE', `invalid image reference "${input}": ${why}`);
  let s = input.trim();
  if (s.startsWith('docker://')) s = s.slice('docker://'.length);
  if (s === '') throw bad('empty');
  if (s.length > 4096) throw bad('too long');

  let digest: string | undefined;
  const at = s.indexOf('@');
  if (at >= 0) {
    digest = s.slice(at + 1);
    s = s.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(`bad digest "${digest}" (expected sha256:<64 hex digits>)`);
  }
  let tag: string | undefined;
  const slash = s.lastIndexOf('/');
  const colon = s.lastIndexOf(':');
  if (colon > slash) {
    tag = s.slice(colon + 1);
    s = s.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`bad tag "${tag}"`);
  }
  let registry = DOCKER_HUB;
  let path = s;
  const first = s.indexOf('/');
  if (first >= 0) {
    const head = s.slice(0, first);
    if (head.includes('.') || head.includes(':') || head === 'localhost' || head !== head.toLowerCase()) {
      if (!HOST.test(head)) throw bad(`bad registry host "${head}"`);
      registry = head;
      path = s.slice(first + 1);
    }
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  if (path === '') throw bad('missing repository name');
  if (path !== path.toLowerCase()) throw bad('repository name must be lowercase');
  for (const c of path.split('/')) {
    if (!COMPONENT.test(c)) throw bad(`bad repository path component "${c}"`);
  }
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  if (registry.length + path.length + 1 > 255) throw bad('repository name longer than 255 characters');
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  const ref: ImageReference = { registry, repository: path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** `registry/repository` */
export function repositoryName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** Full normalised form: docker.io/library/golang:latest, host:5000/repo@sha256:..., repo:tag@sha256:... */
export function formatReference(ref: ImageReference): string {
  let s = repositoryName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** Normalise a user-typed reference string: `golang` -> `docker.io/library/golang:latest`. */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}

/** Short form for display: `golang:latest`, `user/repo:tag`, `ghcr.io/org/repo:tag`. */
export function familiarName(ref: ImageReference): string {
  let repo = ref.repository;
  if (ref.registry === DOCKER_HUB) {
    if (repo.startsWith('library/') && repo.split('/').length === 2) repo = repo.slice('library/'.length);
  } else {
    repo = `${ref.registry}/${repo}`;
  }
  if (ref.tag !== undefined) repo += `:${ref.tag}`;
  if (ref.digest !== undefined) repo += `@${ref.digest}`;
  return repo;
}

/** The tag or digest the registry API takes in /v2/<name>/manifests/<reference>: the digest wins. */
export function manifestReference(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}

export function describeName(reference: string): string {
  try {
    const full = formatReference(parseReference(reference));
    return full === reference ? reference : `${reference} (${full})`;
  } catch {
    return reference;
  }
}
