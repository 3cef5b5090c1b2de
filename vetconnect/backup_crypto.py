"""The encrypted file format of everything under ``backups/`` that can hold data (base backups, archived WAL).

A file is a header and a sequence of chunks, streamed: nothing needs the whole file in memory or a plaintext copy
on disk.

- header: ``VCBKENC1``, one byte of length and the generation id (ASCII), 16 random bytes of salt. The id says
  which key opens the file (``backup_keys``), so tools can tell "key destroyed" from "damaged" without the key.
- the file's key is HKDF-SHA256(generation key, salt): a fresh AES-256-GCM key per file, so the chunk index can be
  the nonce without any two files under one generation key ever sharing a (key, nonce) pair.
- each chunk: 4 bytes of length, then AES-256-GCM of up to ``CHUNK`` bytes, nonce = the chunk index, associated
  data = the header and a "last chunk" flag. A flipped bit, a chunk moved, dropped or taken from another file,
  a file cut short after a chunk, or a header changed to name another generation fails authentication.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"VCBKENC1"
SALT_BYTES = 16
CHUNK = 1 << 20  # 1 MiB: the cipher's speed, not per-chunk overhead, sets the pace (28 bytes a chunk)
LENGTH = struct.Struct(">I")
TAG_BYTES = 16

KeyLookup = Callable[[str], bytes]  # generation id -> its 32-byte key (raises when there is none)


class CipherError(ValueError):
    """A file that is not ours, damaged, cut short or altered; the message names where."""


def _file_cipher(key: bytes, salt: bytes) -> AESGCM:
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"vetconnect backup file")
    return AESGCM(kdf.derive(key))


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


class EncryptingWriter:
    """A write-only binary stream that writes the encrypted format to ``sink``; ``close()`` writes the last
    chunk (without it the file does not decrypt: a backup cut short cannot pass for a whole one)."""

    def __init__(self, sink: BinaryIO, generation: str, key: bytes) -> None:
        encoded = generation.encode("ascii")
        salt = os.urandom(SALT_BYTES)
        self._header = MAGIC + bytes([len(encoded)]) + encoded + salt
        self._cipher = _file_cipher(key, salt)
        self._sink = sink
        self._buffer = bytearray()
        self._index = 0
        sink.write(self._header)

    def _emit(self, plain: bytes | bytearray, *, last: bool) -> None:
        sealed = self._cipher.encrypt(_nonce(self._index), bytes(plain), self._header + bytes([last]))
        self._sink.write(LENGTH.pack(len(sealed)))
        self._sink.write(sealed)
        self._index += 1

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._buffer += data
        # Strictly more than a chunk: what is left may be the end of the file, which goes out flagged as last.
        while len(self._buffer) > CHUNK:
            self._emit(self._buffer[:CHUNK], last=False)
            del self._buffer[:CHUNK]
        return len(data)

    def close(self) -> None:
        self._emit(self._buffer, last=True)
        self._buffer = bytearray()


def read_header(source: BinaryIO, name: str) -> tuple[bytes, str]:
    start = source.read(len(MAGIC) + 1)
    if len(start) < len(MAGIC) + 1 or not start.startswith(MAGIC):
        raise CipherError(f"{name} is not an encrypted backup file")
    rest = source.read(start[-1] + SALT_BYTES)
    if len(rest) < start[-1] + SALT_BYTES:
        raise CipherError(f"{name} is cut short in its header")
    return start + rest, rest[: start[-1]].decode("ascii")


def generation_of(path: Path) -> str:
    """The generation whose key opens the file (read from its header; no key needed)."""
    with path.open("rb") as source:
        return read_header(source, path.name)[1]


def decrypted_chunks(source: BinaryIO, keys: KeyLookup, name: str) -> Iterator[bytes]:
    """The plaintext, a chunk at a time, each authenticated before it is yielded."""
    header, generation = read_header(source, name)
    cipher = _file_cipher(keys(generation), header[-SALT_BYTES:])
    for index in range(1 << 62):
        length = source.read(LENGTH.size)
        if len(length) < LENGTH.size:
            raise CipherError(f"{name} is cut short after chunk {index}")
        sealed = source.read(LENGTH.unpack(length)[0])
        for last in (False, True):
            try:
                plain = cipher.decrypt(_nonce(index), sealed, header + bytes([last]))
            except InvalidTag:
                continue
            yield plain
            if last:
                if source.read(1):
                    raise CipherError(f"{name} has data after its last chunk")
                return
            break
        else:
            raise CipherError(f"{name} is damaged: chunk {index} fails authentication")
    raise AssertionError("unreachable")  # pragma: no cover


class DecryptingReader:
    """A read-only binary stream of a file's plaintext (what ``tarfile`` in stream mode reads)."""

    def __init__(self, source: BinaryIO, keys: KeyLookup, name: str) -> None:
        self._chunks = decrypted_chunks(source, keys, name)
        self._pending = b""
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        wanted = size if size >= 0 else 1 << 62
        while wanted > 0:
            if self._offset >= len(self._pending):
                next_chunk = next(self._chunks, None)
                if next_chunk is None:
                    break
                self._pending, self._offset = next_chunk, 0
                continue
            piece = self._pending[self._offset : self._offset + wanted]
            self._offset += len(piece)
            wanted -= len(piece)
            parts.append(piece)
        return b"".join(parts)


def encrypt_file(source: Path, target: Path, generation: str, key: bytes) -> None:
    """``source`` encrypted into ``target`` atomically: a temporary file beside it, fsynced, renamed into place."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with source.open("rb") as plain, partial.open("wb") as sink:
        writer = EncryptingWriter(sink, generation, key)
        while block := plain.read(CHUNK):
            writer.write(block)
        writer.close()
        sink.flush()
        os.fsync(sink.fileno())
    partial.replace(target)


def decrypt_file(source: Path, target: Path, keys: KeyLookup) -> None:
    with source.open("rb") as sealed, target.open("wb") as sink:
        for plain in decrypted_chunks(sealed, keys, source.name):
            sink.write(plain)
