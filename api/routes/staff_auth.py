"""Sign-in (OAuth2 password flow), refresh with rotation, and revocation (RFC 7009 style)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from api.problems import Problem
from api.problems import problem_responses
from api.staff import STAFF_RESPONSES, AuthDep, note_failure, throttle_signin

router = APIRouter(prefix="/auth", tags=["sign-in"])


class TokenView(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds the access token lives")
    refresh_token: str


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=256)


def _view(tokens) -> TokenView:
    return TokenView(access_token=tokens.access_token, expires_in=tokens.expires_in,
                     refresh_token=tokens.refresh_token)


@router.post("/token", response_model=TokenView, responses={**STAFF_RESPONSES, **problem_responses(429)})
def sign_in(form: Annotated[OAuth2PasswordRequestForm, Depends()], auth: AuthDep, request: Request,
            response: Response) -> TokenView:
    """Email (``username``) and password for an access token and a refresh token."""
    account = form.username.strip().lower()[:320]
    throttle_signin(request, account)
    tokens = auth.sign_in(account, form.password[:1024])
    if tokens is None:
        note_failure(request, account)
        raise Problem(401, "invalid-credentials", "Wrong email or password.", headers={"WWW-Authenticate": "Bearer"})
    response.headers["Cache-Control"] = "no-store"
    return _view(tokens)


@router.post("/refresh", response_model=TokenView, responses=STAFF_RESPONSES)
def refresh(body: RefreshRequest, auth: AuthDep, response: Response) -> TokenView:
    """A live session's refresh token for new tokens; the old refresh token stops working."""
    tokens = auth.refresh(body.refresh_token)
    if tokens is None:
        raise Problem(401, "invalid-refresh-token", "This refresh token is spent, revoked or expired; sign in again.")
    response.headers["Cache-Control"] = "no-store"
    return _view(tokens)


@router.post("/revoke", status_code=204, responses=STAFF_RESPONSES)
def revoke(body: RefreshRequest, auth: AuthDep) -> Response:
    """Sign out: the session of this refresh token ends, and its access tokens stop working at once."""
    auth.sign_out(refresh_token=body.refresh_token)
    return Response(status_code=204)
