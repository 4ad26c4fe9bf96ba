"""The API's settings: the shop's own (``commerce.settings``) plus what only the HTTP service needs.

Same ``STOREHOUSE_SHOP_*`` variables, read once by the app factory.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from commerce.settings import CommerceSettings, split_list


KEEP_ALIVE_S = 75


class ApiSettings(CommerceSettings):
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list, description="allowed browser origins")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="larger request bodies get 413")
    max_webhook_body_bytes: int = Field(1024 * 1024, ge=1024, description="the same for webhook deliveries "
                                        "(a Shopify product with many variants, say): a 413 would lose the event")
    trust_forwarded_for: bool = Field(False, description="rate-limit by X-Forwarded-For (behind a proxy)")
    trusted_proxies: int = Field(1, ge=1, description="proxies in front of the API that append to X-Forwarded-For; "
                                 "the client is the entry that many places from the right (the left is the client's "
                                 "own word)")
    checkout_rate_per_s: float = Field(2.0, gt=0, description="checkouts per second per client, sustained")
    checkout_burst: int = Field(10, ge=1, description="checkouts a client may make at once")
    pos_webhook_rate_per_s: float = Field(10.0, gt=0, description="POS webhook deliveries per second per shop and "
                                          "client, sustained (a refused delivery gets 429 and the POS retries)")
    pos_webhook_burst: int = Field(100, ge=1, description="POS webhook deliveries a client may make at once")
    metrics_token: SecretStr | None = Field(None, description="when set, /metrics needs it as a bearer token")
    keep_alive_s: int = Field(KEEP_ALIVE_S, ge=1, description="seconds an idle keep-alive connection stays open; "
                              "longer than any client's or load balancer's idle timeout, so none sends a request "
                              "on a connection the server is closing")

    def uvicorn_options(self) -> dict[str, Any]:
        """How ``storehouse api`` runs uvicorn.

        Keep-alive: uvicorn closes an idle connection after 5 s, the same time httpx's pools keep
        one, so a client could send a request on a connection the server is closing and see it
        dropped without an answer (a soak saw two Stripe deliveries dropped so; Stripe retried them). Load
        balancers keep theirs open 60 s (AWS ALB, nginx). ``keep_alive_s`` outlasts both.

        Uvicorn's own X-Forwarded-For/-Proto handling is always off.

        Its default trusts these headers from 127.0.0.1, so any local caller could name its own
        address; and trusting every peer (``forwarded_allow_ips="*"``) makes it believe the
        leftmost entry, the client's own word. When ``trust_forwarded_for`` says proxies stand in
        front, ``api.middleware.ForwardedClientMiddleware`` picks the client ``trusted_proxies``
        places from the right instead, for the access log and the rate limits alike.
        """
        return {"proxy_headers": False, "timeout_keep_alive": self.keep_alive_s}

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        return split_list(value)
