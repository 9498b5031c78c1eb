"""Results in Amazon S3 (or an S3-compatible endpoint) through boto3.

Credentials come from boto3's standard chain (environment, profile, SSO, instance or task
role); ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) points it at another endpoint.
Conditional writes use ``IfMatch``/``IfNoneMatch`` with the object's ETag as version.
"""

from __future__ import annotations

import io
import os
import secrets
from typing import Any

from hpt.sinks import BucketSink, SinkAccessError, broken_install, describe, env_float

__all__ = ["S3Sink"]

_MULTIPART_ABOVE = 64 * 1024 * 1024
_TRANSIENT_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "RequestTimeTooSkewed",
                    "Throttling", "ThrottlingException", "RequestLimitExceeded", "ConditionalRequestConflict",
                    "OperationAborted", "500", "502", "503", "504"}
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
                     "AuthorizationHeaderMalformed", "InvalidClientTokenId", "UnrecognizedClientException"}


def _import_boto3() -> Any:
    # Imported here, not at the top: commands that never touch an s3:// location skip its cost.
    try:
        import boto3
        import botocore.config
    except ImportError as e:
        raise broken_install("s3://", "boto3>=1.36", e) from None
    return boto3, botocore.config



_PERMISSIONS = {"list": "s3:ListBucket", "read": "s3:GetObject", "write": "s3:PutObject", "delete": "s3:DeleteObject"}
"""The permission each kind of call needs (hpt run needs the first three; hpt results and predict read and list)."""


class S3Sink(BucketSink):
    """``s3://bucket/prefix``: one object per key under the prefix."""

    scheme = "s3"
    client_loggers = ("boto3", "botocore", "s3transfer")

    def __init__(self, bucket: str, prefix: str = "") -> None:
        boto3, config = _import_boto3()
        super().__init__(bucket, prefix)
        timeout = env_float("HPT_SINK_TIMEOUT", 60.0)
        cfg = config.Config(connect_timeout=min(timeout, 10.0), read_timeout=timeout, max_pool_connections=32,
                            retries={"total_max_attempts": 1, "mode": "standard"})  # one try: hpt.sinks.retrying retries
        try:
            self._client = boto3.session.Session().client("s3", config=cfg)
        except Exception as e:  # a bad profile or region in the AWS config files, an endpoint without its scheme
            endpoint = next((f"${k} is {os.environ[k]!r}" for k in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
                             if os.environ.get(k)), "")
            hint = f" ({endpoint}: an endpoint is a URL such as http://127.0.0.1:9000)" if \
                endpoint and "endpoint" in str(e).lower() else ""
            raise SinkAccessError(f"{self.uri}: cannot set up the S3 client: {describe(e)}{hint}") from None

    def _transient(self, e: BaseException) -> bool:
        return _transient(e)

    def _access_error(self, what: str, e: Exception) -> Exception:
        name = type(e).__name__
        code = _code(e)
        where = f"s3://{self.bucket_name}"
        if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
            return SinkAccessError(f"{self.uri}: no usable AWS credentials found ({name}); set AWS_ACCESS_KEY_ID and "
                                   "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run on a machine with an IAM role")
        if name in ("ProfileNotFound", "NoRegionError", "InvalidConfigError"):
            return SinkAccessError(f"{self.uri}: AWS configuration problem: {describe(e)}")
        if code == "NoSuchBucket":
            return SinkAccessError(f"{self.uri}: bucket {where} does not exist; create it (aws s3 mb {where}) or fix "
                                   "the bucket name")
        if code in _CREDENTIAL_CODES:
            return SinkAccessError(f"{self.uri}: AWS rejected the credentials ({code}); check AWS_ACCESS_KEY_ID/"
                                   "AWS_SECRET_ACCESS_KEY or AWS_PROFILE")
        if code in ("AccessDenied", "403", "AllAccessDisabled", "AccountProblem"):
            need = _PERMISSIONS.get(what.split(" ", 1)[0], "s3:PutObject, s3:GetObject and s3:ListBucket")
            return SinkAccessError(f"{self.uri}: permission denied to {what} ({code}); the credentials need {need} on "
                                   f"{where}")
        return SinkAccessError(f"{self.uri}: cannot {what}: {describe(e)}")

    def check_writable(self) -> None:
        probe = self._key(".hpt-write-check")
        body = secrets.token_hex(8).encode()
        self._call("write", lambda: self._client.put_object(Bucket=self.bucket_name, Key=probe, Body=body))
        self._call("list", lambda: self._client.list_objects_v2(Bucket=self.bucket_name, Prefix=probe, MaxKeys=1))
        try:
            self._client.delete_object(Bucket=self.bucket_name, Key=probe)
        except Exception:
            pass  # allowed to write but not to delete: the probe stays, which is harmless

    def write(self, key: str, data: bytes) -> None:
        k = self._key(key)
        if len(data) > _MULTIPART_ABOVE:
            self._call(f"write {key}", lambda: self._client.upload_fileobj(io.BytesIO(data), self.bucket_name, k))
        else:
            self._call(f"write {key}", lambda: self._client.put_object(Bucket=self.bucket_name, Key=k, Body=data))

    def read(self, key: str) -> bytes | None:
        got = self.read_versioned(key)
        return got[0] if got else None

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        k = self._key(key)

        def get() -> tuple[bytes, str] | None:
            try:
                resp = self._client.get_object(Bucket=self.bucket_name, Key=k)
            except Exception as e:
                if _code(e) in ("NoSuchKey", "404"):
                    return None
                raise
            return resp["Body"].read(), str(resp["ETag"])

        return self._call(f"read {key}", get)

    def write_if(self, key: str, data: bytes, version: str | None) -> str | None:
        k = self._key(key)
        cond = {"IfNoneMatch": "*"} if version is None else {"IfMatch": version}

        def put() -> str | None:
            try:
                resp = self._client.put_object(Bucket=self.bucket_name, Key=k, Body=data, **cond)
            except Exception as e:
                if _code(e) in ("PreconditionFailed", "412"):
                    return None
                if _code(e) in ("NoSuchKey", "404") and version is not None:
                    return None  # deleted since we read it
                raise
            return str(resp["ETag"])

        return self._call(f"write {key}", put)

    def delete(self, key: str) -> None:
        k = self._key(key)
        self._call(f"delete {key}", lambda: self._client.delete_object(Bucket=self.bucket_name, Key=k))

    def folders(self, prefix: str = "") -> list[str]:
        full = self._key(prefix)

        def page_through() -> list[str]:
            names: list[str] = []
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket_name, Prefix=full,
                                                                               Delimiter="/"):
                names += [p["Prefix"][len(full):].rstrip("/") for p in page.get("CommonPrefixes", [])]
            return names

        return sorted(self._call(f"list {prefix}", page_through))

    def list(self, prefix: str) -> list[str]:
        full = self._key(prefix)
        strip = len(self._key(""))

        def page_through() -> list[str]:
            keys: list[str] = []
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket_name, Prefix=full):
                keys += [o["Key"][strip:] for o in page.get("Contents", [])]
            return keys

        return sorted(self._call(f"list {prefix}", page_through))


def _code(e: BaseException) -> str:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return str(status or "")
    return ""


def _transient(e: BaseException) -> bool:
    name = type(e).__name__
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
                "ConnectionError", "ProxyConnectionError", "IncompleteReadError", "ResponseStreamingError",
                "HTTPClientError"):
        return True
    if isinstance(e, (ConnectionError, TimeoutError)):
        return True
    code = _code(e)
    if code in _TRANSIENT_CODES:
        return True
    response = getattr(e, "response", None)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) if isinstance(response, dict) else 0
    return bool(status and (status >= 500 or status == 429))
