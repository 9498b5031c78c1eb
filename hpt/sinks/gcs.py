"""Results in Google Cloud Storage through the official ``google-cloud-storage`` client.

Credentials come from application default credentials (``GOOGLE_APPLICATION_CREDENTIALS``,
``gcloud auth application-default login``, or the machine's service account);
``STORAGE_EMULATOR_HOST`` points the client at an emulator. Conditional writes use
``if_generation_match`` with the object's generation as version; objects up to 8 MiB go up
in one request, where GCS always enforces the precondition.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any

from hpt.sinks import BucketSink, SinkAccessError, broken_install, describe, env_float

__all__ = ["GCSSink"]



def _import_storage() -> Any:
    # Imported here, not at the top: commands that never touch a gs:// location skip its cost.
    try:
        from google.cloud import storage
    except ImportError as e:
        raise broken_install("gs://", "google-cloud-storage>=2.10", e) from None
    return storage



_PERMISSIONS = {"list": "storage.objects.list", "read": "storage.objects.get", "write": "storage.objects.create",
                "delete": "storage.objects.delete"}
"""The permission each kind of call needs (hpt run needs the first three; hpt results and predict read and list)."""


class GCSSink(BucketSink):
    """``gs://bucket/prefix``: one object per key under the prefix."""

    scheme = "gs"
    client_loggers = ("google",)

    def __init__(self, bucket: str, prefix: str = "") -> None:
        storage = _import_storage()
        super().__init__(bucket, prefix)
        # google.auth warns about each credential source it tries in turn; when none works,
        # hpt's own one-line error says what is missing.
        logging.getLogger("google.auth").setLevel(logging.ERROR)
        timeout = env_float("HPT_SINK_TIMEOUT", 60.0)
        self._timeout = (min(timeout, 10.0), timeout)
        try:
            self._client = storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT"))
        except Exception as e:
            raise self._access_error("connect", e) from None
        self._bucket = self._client.bucket(bucket)

    def _transient(self, e: BaseException) -> bool:
        return _transient(e)

    def _access_error(self, what: str, e: Exception) -> Exception:
        name = type(e).__name__
        code = getattr(e, "code", None)
        where = f"gs://{self.bucket_name}"
        key = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if key and os.path.isdir(key):  # the client's own error is an IsADirectoryError of the key's path
            return SinkAccessError(f"{self.uri}: GOOGLE_APPLICATION_CREDENTIALS={key} is a folder, not a key file; "
                                   "point it at a service account key file, or unset it to use gcloud's login")
        if name == "DefaultCredentialsError":
            if key:  # it names a file that is not there, or not a key: say which
                why = "does not exist" if not os.path.exists(key) else f"is not a usable key file ({describe(e)})"
                return SinkAccessError(f"{self.uri}: GOOGLE_APPLICATION_CREDENTIALS={key} {why}; point it at a "
                                       "service account key file, or unset it to use gcloud's login")
            return SinkAccessError(f"{self.uri}: no usable Google Cloud credentials found; run `gcloud auth "
                                   "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS to a key file")
        if name == "RefreshError" or code == 401:
            return SinkAccessError(f"{self.uri}: Google Cloud rejected the credentials ({name}); refresh them "
                                   "(gcloud auth application-default login) or check GOOGLE_APPLICATION_CREDENTIALS")
        if code == 404 and what in ("write", "list", "check"):
            return SinkAccessError(f"{self.uri}: bucket {where} does not exist; create it (gcloud storage buckets create "
                                   f"{where}) or fix the bucket name")
        if code == 403:
            need = _PERMISSIONS.get(what.split(" ", 1)[0], "storage.objects.create, get and list")
            return SinkAccessError(f"{self.uri}: permission denied to {what} (403); the account needs {need} on "
                                   f"{where} (e.g. roles/storage.objectUser)")
        return SinkAccessError(f"{self.uri}: cannot {what}: {describe(e)}")

    def check_writable(self) -> None:
        probe = self._bucket.blob(self._key(f".hpt-write-check-{secrets.token_hex(4)}"))
        self._call("write", lambda: probe.upload_from_string(b"hpt", timeout=self._timeout, retry=None))
        self._call("list", lambda: list(self._client.list_blobs(self._bucket, prefix=probe.name, max_results=1,
                                                                timeout=self._timeout, retry=None)))
        try:
            probe.delete(timeout=self._timeout, retry=None)
        except Exception:
            pass  # allowed to write but not to delete: the probe stays, which is harmless

    def write(self, key: str, data: bytes) -> None:
        blob = self._bucket.blob(self._key(key))
        self._call("write", lambda: blob.upload_from_string(data, timeout=self._timeout, retry=None))

    def read(self, key: str) -> bytes | None:
        got = self.read_versioned(key)
        return got[0] if got else None

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        def get() -> tuple[bytes, str] | None:
            blob = self._bucket.blob(self._key(key))
            try:
                data = blob.download_as_bytes(timeout=self._timeout, retry=None)
            except Exception as e:
                if getattr(e, "code", None) == 404:
                    return None  # no such object (a missing bucket shows up in check_writable and list)
                raise
            return data, str(blob.generation)

        return self._call("read", get)

    def write_if(self, key: str, data: bytes, version: str | None) -> str | None:
        def put() -> str | None:
            blob = self._bucket.blob(self._key(key))
            try:
                blob.upload_from_string(data, if_generation_match=0 if version is None else int(version),
                                        timeout=self._timeout, retry=None)
            except Exception as e:
                if getattr(e, "code", None) == 412:
                    return None
                raise
            return str(blob.generation)

        return self._call("write", put)

    def delete(self, key: str) -> None:
        def remove() -> None:
            try:
                self._bucket.blob(self._key(key)).delete(timeout=self._timeout, retry=None)
            except Exception as e:
                if getattr(e, "code", None) != 404:
                    raise

        self._call("delete", remove)

    def folders(self, prefix: str = "") -> list[str]:
        full = self._key(prefix)

        def page_through() -> list[str]:
            blobs = self._client.list_blobs(self._bucket, prefix=full, delimiter="/", timeout=self._timeout, retry=None)
            for _ in blobs.pages:  # the folders (prefixes) arrive with the pages
                pass
            return [p[len(full):].rstrip("/") for p in blobs.prefixes]

        return sorted(self._call("list", page_through))

    def list(self, prefix: str) -> list[str]:
        strip = len(self._key(""))

        def page_through() -> list[str]:
            return [b.name[strip:] for b in self._client.list_blobs(self._bucket, prefix=self._key(prefix),
                                                                    timeout=self._timeout, retry=None)]

        return sorted(self._call("list", page_through))


def _transient(e: BaseException) -> bool:
    code = getattr(e, "code", None)
    if isinstance(code, int) and (code >= 500 or code in (408, 429)):
        return True
    name = type(e).__name__
    if name in ("ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout", "ChunkedEncodingError",
                "ProtocolError", "TransportError", "DataCorruption", "RemoteDisconnected", "IncompleteRead",
                "ServiceUnavailable", "InternalServerError", "BadGateway", "GatewayTimeout", "TooManyRequests"):
        return True
    return isinstance(e, (ConnectionError, TimeoutError))
