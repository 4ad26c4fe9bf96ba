"""The S3 backend: any S3-compatible store (AWS, MinIO, Cloudflare R2, Supabase's S3 endpoint).

One boto3 client per process (boto clients are thread-safe), with the call policy on the client
itself: connect and read timeouts, and botocore's "standard" retry mode with at most
``s3_max_attempts`` attempts (exponential backoff with jitter, retrying throttling, 5xx and
connection errors only). Each seed bucket is one S3 bucket, ``{s3_bucket_prefix}{bucket}``,
created at start when ``s3_create_buckets`` is set. Downloads are presigned GET URLs that carry
``response-content-disposition``, so the browser saves the file under its own name; the store
checks their signature and expiry itself. Errors become :class:`StorageError` naming the
operation and S3's error code, never a credential.
"""

from __future__ import annotations

import posixpath

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from resources.storage import BUCKETS, NotFound, StorageError, check_bucket, check_key, content_disposition
from resources.storage.local import MAX_LINK_S
from resources.storage.settings import StorageSettings

MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Storage:
    """:class:`resources.storage.Storage` on an S3 API; ``bucket_prefix`` + seed bucket = S3 bucket."""

    def __init__(self, client, bucket_prefix: str = "storehouse-") -> None:
        self.client, self.bucket_prefix = client, bucket_prefix

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> S3Storage:
        config = Config(connect_timeout=settings.s3_connect_timeout_s, read_timeout=settings.s3_read_timeout_s,
                        retries={"total_max_attempts": settings.s3_max_attempts, "mode": "standard"},
                        signature_version="s3v4", s3={"addressing_style": settings.s3_addressing_style})
        secret = settings.s3_secret_access_key
        client = boto3.session.Session().client(
            "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region, config=config,
            aws_access_key_id=settings.s3_access_key_id.get_secret_value() if settings.s3_access_key_id else None,
            aws_secret_access_key=secret.get_secret_value() if secret else None)
        storage = cls(client, settings.s3_bucket_prefix)
        if settings.s3_create_buckets:
            storage.ensure_buckets()
        return storage

    def _bucket(self, bucket: str) -> str:
        return self.bucket_prefix + check_bucket(bucket)

    def _call(self, operation: str, **params):
        try:
            return getattr(self.client, operation)(**params)
        except ClientError as exc:
            if _code(exc) in MISSING:
                raise NotFound(f"{params.get('Bucket')}/{params.get('Key', '')}") from None
            raise StorageError(f"S3 {operation} failed: {_code(exc) or 'error'}") from None
        except BotoCoreError as exc:  # connection refused, timeouts after the retries
            raise StorageError(f"S3 {operation} failed: {type(exc).__name__}") from None

    def ensure_buckets(self) -> None:
        """Create any seed bucket that does not exist yet (idempotent: several workers may race)."""
        region = self.client.meta.region_name
        for bucket in (self._bucket(b) for b in BUCKETS):
            try:
                self._call("head_bucket", Bucket=bucket)
                continue
            except NotFound:
                pass
            params = {"Bucket": bucket}
            if region and region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
                params["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                self.client.create_bucket(**params)
            except ClientError as exc:
                if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise StorageError(f"S3 create_bucket failed: {_code(exc) or 'error'}") from None
            except BotoCoreError as exc:
                raise StorageError(f"S3 create_bucket failed: {type(exc).__name__}") from None

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        self._call("put_object", Bucket=self._bucket(bucket), Key=check_key(key), Body=bytes(data),
                   ContentType=content_type or "application/octet-stream")

    def get(self, bucket: str, key: str) -> bytes:
        response = self._call("get_object", Bucket=self._bucket(bucket), Key=check_key(key))
        try:
            return response["Body"].read()
        except BotoCoreError as exc:
            raise StorageError(f"S3 get_object failed while reading: {type(exc).__name__}") from None

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self._call("head_object", Bucket=self._bucket(bucket), Key=check_key(key))
            return True
        except NotFound:
            return False

    def delete(self, bucket: str, keys: list[str]) -> int:
        name = self._bucket(bucket)
        keys = [check_key(key) for key in keys]
        # S3 reports every key of a batch delete as deleted, present or not: count them first
        existed = sum(self.exists(bucket, key) for key in keys)
        for start in range(0, len(keys), 1000):  # the API's batch limit
            batch = [{"Key": key} for key in keys[start:start + 1000]]
            response = self._call("delete_objects", Bucket=name, Delete={"Objects": batch, "Quiet": True})
            if response.get("Errors"):
                raise StorageError(f"S3 delete_objects failed for {len(response['Errors'])} keys: "
                                   f"{response['Errors'][0].get('Code', 'error')}")
        return existed

    def list(self, bucket: str, prefix: str = "") -> list[tuple[str, int]]:
        if prefix:
            check_key(prefix.rstrip("/") or "/")
        found = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self._bucket(bucket),
                                                                            Prefix=prefix):
                found += [(item["Key"], int(item["Size"])) for item in page.get("Contents", [])]
        except ClientError as exc:
            raise StorageError(f"S3 list_objects_v2 failed: {_code(exc) or 'error'}") from None
        except BotoCoreError as exc:
            raise StorageError(f"S3 list_objects_v2 failed: {type(exc).__name__}") from None
        return sorted(found)

    def signed_url(self, bucket: str, key: str, *, expires_s: int, filename: str | None = None) -> str:
        if not 1 <= expires_s <= MAX_LINK_S:
            raise ValueError(f"expires_s must be between 1 and {MAX_LINK_S}")
        params = {"Bucket": self._bucket(bucket), "Key": check_key(key),
                  "ResponseContentDisposition": content_disposition(filename or posixpath.basename(key))}
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=int(expires_s))

    def close(self) -> None:
        self.client.close()
