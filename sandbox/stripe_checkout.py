"""Checkout for the Stripe fake: sessions, and the PaymentIntents and Charges their customers make.

``CheckoutMixin`` is mixed into ``sandbox.stripe_objects.StripeStore``: it creates, expires and
completes Checkout Sessions, and plays the customer's side (paying by card or bank debit, being
declined, an async debit settling), using the store's ``_add``, ``get``, ``locate`` and ``emit``.
"""

from __future__ import annotations

import heapq
import re
import time
from typing import TYPE_CHECKING, Any

from sandbox.stripe_http import (
    StripeError, _bool, _check_keys, _currency, _id, _int, _invalid, _list, _metadata, _missing, _money, _no_such,
    _now, _str)

if TYPE_CHECKING:
    from sandbox.stripe_objects import _Account, _Ctx

_MINIMUM_CHARGE = {"usd": 50, "eur": 50, "cad": 50, "aud": 50, "chf": 50, "gbp": 30, "jpy": 50, "nzd": 50}
_DECLINES = {  # decline_code -> (error code, message, last4 of Stripe's matching test card)
    "generic_decline": ("card_declined", "Your card was declined.", "0002"),
    "insufficient_funds": ("card_declined", "Your card has insufficient funds.", "9995"),
    "lost_card": ("card_declined", "Your card was declined.", "9987"),
    "stolen_card": ("card_declined", "Your card was declined.", "9979"),
    "fraudulent": ("card_declined", "Your card was declined.", "0019"),
    "do_not_honor": ("card_declined", "Your card was declined.", "0002"),
    "expired_card": ("expired_card", "Your card has expired.", "0069"),
    "incorrect_cvc": ("incorrect_cvc", "Your card's security code is incorrect.", "0127"),
    "processing_error": ("processing_error",
                         "An error occurred while processing your card. Try again in a little bit.", "0119"),
}


class CheckoutMixin:
    """Checkout Sessions and the customer's side of Checkout; callers hold the store's ``lock``."""

    _SESSION_PARAMS = {"mode", "line_items", "success_url", "cancel_url", "metadata", "client_reference_id",
                       "customer_email", "payment_intent_data", "expires_at", "expand", "currency", "locale",
                       "submit_type", "payment_method_types", "billing_address_collection",
                       "allow_promotion_codes", "ui_mode"}
    _SESSION_NOT_MODELLED = {"adaptive_pricing", "after_expiration", "automatic_tax", "branding_settings",
                             "consent_collection", "custom_fields", "custom_text", "customer", "customer_creation",
                             "customer_update", "discounts", "excluded_payment_method_types", "invoice_creation",
                             "name_collection", "optional_items", "origin_context", "payment_method_collection",
                             "payment_method_configuration", "payment_method_data", "payment_method_options",
                             "permissions", "phone_number_collection", "redirect_on_completion", "return_url",
                             "saved_payment_method_options", "setup_intent_data", "shipping_address_collection",
                             "shipping_options", "subscription_data", "tax_id_collection", "wallet_options"}

    def create_session(self, ctx: _Ctx, p: dict) -> dict:
        _check_keys(p, self._SESSION_PARAMS, not_modelled=self._SESSION_NOT_MODELLED)
        mode = _str(p.get("mode", "payment"), "mode")
        if mode not in ("payment", "setup", "subscription"):
            raise _invalid("mode", "Invalid mode: must be one of payment, setup, or subscription")
        if mode != "payment":
            raise _invalid("mode", f"The Storehouse Stripe sandbox only models mode=payment, not {mode}.")
        if _str(p.get("ui_mode", "hosted"), "ui_mode") != "hosted":
            raise _invalid("ui_mode", "The Storehouse Stripe sandbox only models ui_mode=hosted.")
        now = _now()
        items, products = self._line_items(ctx.acct, p.get("line_items"), now)
        currency = items[0]["currency"]
        if "currency" in p and _currency(p["currency"], "currency") != currency:
            raise _invalid("currency", "The currency must match the currency of the line items.")
        total = sum(i["amount_total"] for i in items)
        minimum = _MINIMUM_CHARGE.get(currency)
        if minimum and 0 < total < minimum:
            raise _invalid("line_items", f"The Checkout Session's total amount due must add up to at least "
                                         f"{_money(minimum, currency)} {currency}")
        expires_at = now + 24 * 3600
        if "expires_at" in p:
            expires_at = _int(p["expires_at"], "expires_at")
            if expires_at - now > 24 * 3600:
                raise _invalid("expires_at", "The `expires_at` timestamp must be less than 24 hours from "
                                             "Checkout Session creation.")
            if expires_at - now < 30 * 60:
                raise _invalid("expires_at", "The `expires_at` timestamp must be at least 30 minutes from "
                                             "Checkout Session creation.")
        email = p.get("customer_email")
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", _str(email, "customer_email")):
            raise _invalid("customer_email", f"Invalid email address: {email}", code="email_invalid")
        pid = p.get("payment_intent_data") or {}
        if not isinstance(pid, dict):
            raise _invalid("payment_intent_data", "Invalid object")
        _check_keys(pid, {"metadata", "description", "receipt_email", "capture_method", "statement_descriptor",
                          "statement_descriptor_suffix"}, "payment_intent_data",
                    not_modelled={"application_fee_amount", "on_behalf_of", "setup_future_usage", "shipping",
                                  "transfer_data", "transfer_group"})
        if pid.get("capture_method", "automatic") not in ("automatic", "automatic_async"):
            raise _invalid("payment_intent_data[capture_method]",
                           "The Storehouse Stripe sandbox only models automatic capture.")
        for key in ("success_url", "cancel_url"):
            if key in p and not re.match(r"https?://", _str(p[key], key)):
                raise _invalid(key, "Not a valid URL", code="url_invalid")
        session_id = _id("cs_test_", 58)
        for product in products:
            self._add(ctx.acct, product)
        session = {
            "id": session_id, "object": "checkout.session", "adaptive_pricing": {"enabled": False},
            "after_expiration": None,
            "allow_promotion_codes": _bool(p["allow_promotion_codes"], "allow_promotion_codes")
            if "allow_promotion_codes" in p else None,
            "amount_subtotal": total, "amount_total": total,
            "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
            "billing_address_collection": p.get("billing_address_collection"),
            "cancel_url": p.get("cancel_url"), "client_reference_id": p.get("client_reference_id"),
            "client_secret": None, "consent": None, "consent_collection": None, "created": now,
            "currency": currency, "custom_fields": [],
            "custom_text": {"after_submit": None, "shipping_address": None, "submit": None,
                            "terms_of_service_acceptance": None},
            "customer": None, "customer_creation": "if_required", "customer_details": None,
            "customer_email": email, "discounts": [], "expires_at": expires_at, "invoice": None,
            "livemode": False, "locale": p.get("locale"), "metadata": _metadata(p.get("metadata")),
            "mode": "payment", "payment_intent": None, "payment_link": None,
            "payment_method_collection": "if_required",
            "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
            "payment_method_types": [_str(t, "payment_method_types") for t in
                                     _list(p.get("payment_method_types", ["card"]), "payment_method_types")],
            "payment_status": "unpaid", "phone_number_collection": {"enabled": False},
            "recovered_from": None, "setup_intent": None, "shipping_address_collection": None,
            "shipping_cost": None, "shipping_options": [], "status": "open",
            "submit_type": p.get("submit_type"), "subscription": None, "success_url": p.get("success_url"),
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted", "url": f"{ctx.base_url}/c/pay/{session_id}",
        }
        self._add(ctx.acct, session)
        ctx.acct.line_items[session_id] = items
        ctx.acct.open_sessions.add(session_id)
        heapq.heappush(ctx.acct.expiry_queue, (expires_at, session_id))
        ctx.acct.intent_specs[session_id] = {
            "metadata": _metadata(pid.get("metadata"), "payment_intent_data[metadata]"),
            "description": pid.get("description"), "receipt_email": pid.get("receipt_email"),
            "statement_descriptor": pid.get("statement_descriptor"),
            "statement_descriptor_suffix": pid.get("statement_descriptor_suffix"),
        }
        return session

    def _line_items(self, acct: _Account, raw: Any, now: int) -> tuple[list[dict], list[dict]]:
        if raw in (None, "", []):
            raise _missing("line_items")
        items, products = [], []
        for n, item in enumerate(_list(raw, "line_items")):
            at = f"line_items[{n}]"
            if not isinstance(item, dict):
                raise _invalid(at, "Invalid object")
            _check_keys(item, {"price_data", "quantity", "price"}, at,
                        not_modelled={"adjustable_quantity", "dynamic_tax_rates", "tax_rates"})
            if "price" in item:
                raise _no_such("price", _str(item["price"], f"{at}[price]"), f"{at}[price]")
            price_data = item.get("price_data")
            if not isinstance(price_data, dict):
                raise _missing(f"{at}[price_data]")
            _check_keys(price_data, {"currency", "unit_amount", "unit_amount_decimal", "product_data",
                                     "product", "tax_behavior"}, f"{at}[price_data]",
                        not_modelled={"recurring"})
            if "currency" not in price_data:
                raise _missing(f"{at}[price_data][currency]")
            currency = _currency(price_data["currency"], f"{at}[price_data][currency]")
            if "unit_amount" in price_data:
                unit_amount = _int(price_data["unit_amount"], f"{at}[price_data][unit_amount]", 0, 99_999_999)
            elif "unit_amount_decimal" in price_data:
                decimal = _str(price_data["unit_amount_decimal"], f"{at}[price_data][unit_amount_decimal]")
                if not re.fullmatch(r"\d+(\.0+)?", decimal):
                    raise _invalid(f"{at}[price_data][unit_amount_decimal]",
                                   "The Storehouse Stripe sandbox only models whole-unit amounts.")
                unit_amount = int(float(decimal))
            else:
                raise _missing(f"{at}[price_data][unit_amount]")
            if "product" in price_data:
                raise _no_such("product", _str(price_data["product"], f"{at}[price_data][product]"),
                               f"{at}[price_data][product]")
            product_data = price_data.get("product_data")
            if not isinstance(product_data, dict):
                raise _invalid(f"{at}[price_data]", "You must specify either `product` or `product_data` when "
                                                    "creating a price.")
            _check_keys(product_data, {"name", "description", "images", "metadata", "tax_code", "unit_label"},
                        f"{at}[price_data][product_data]")
            if not product_data.get("name"):
                raise _missing(f"{at}[price_data][product_data][name]")
            if "quantity" not in item:
                raise _missing(f"{at}[quantity]")
            quantity = _int(item["quantity"], f"{at}[quantity]", 1, 999_999)
            if items and currency != items[0]["currency"]:
                raise _invalid(f"{at}[price_data][currency]", "All line items must use the same currency.")
            name = _str(product_data["name"], f"{at}[price_data][product_data][name]")
            product = {"id": _id("prod_", 14), "object": "product", "active": True, "created": now,
                       "description": product_data.get("description"),
                       "images": _list(product_data.get("images", []), "images"), "livemode": False,
                       "metadata": _metadata(product_data.get("metadata"), f"{at}[price_data][product_data]"
                                                                           f"[metadata]"),
                       "name": name, "type": "service", "unit_label": product_data.get("unit_label"),
                       "updated": now}
            products.append(product)
            price = {"id": _id("price_"), "object": "price", "active": False, "billing_scheme": "per_unit",
                     "created": now, "currency": currency, "custom_unit_amount": None, "livemode": False,
                     "lookup_key": None, "metadata": {}, "nickname": None, "product": product["id"],
                     "recurring": None, "tax_behavior": price_data.get("tax_behavior", "unspecified"),
                     "tiers_mode": None, "transform_quantity": None, "type": "one_time",
                     "unit_amount": unit_amount, "unit_amount_decimal": str(unit_amount)}
            items.append({"id": _id("li_"), "object": "item", "amount_discount": 0,
                          "amount_subtotal": unit_amount * quantity, "amount_tax": 0,
                          "amount_total": unit_amount * quantity, "currency": currency, "description": name,
                          "price": price, "quantity": quantity})
        return items, products

    def sweep_expired(self, acct: _Account) -> None:
        """Expire open sessions whose ``expires_at`` has passed, as Stripe does on its own."""
        now = _now()
        queue = acct.expiry_queue  # (expires_at, session id), soonest first: no scan of every session
        while queue and queue[0][0] <= now:
            _, session_id = heapq.heappop(queue)
            if session_id in acct.open_sessions:
                self.expire_session(acct, acct.objects[session_id])

    def expire_session(self, acct: _Account, session: dict, request: dict | None = None) -> dict:
        if session["status"] != "open":
            raise StripeError(400, 'Only Checkout Sessions with a status in ["open"] can be expired.',
                              param="session")
        session.update(status="expired", url=None)
        acct.open_sessions.discard(session["id"])
        pi = acct.objects.get(session["payment_intent"] or "")
        if pi is not None and pi["status"] not in ("succeeded", "canceled"):
            pi.update(status="canceled", canceled_at=_now(), cancellation_reason="abandoned")
            self.emit(acct, "payment_intent.canceled", pi, request)
        self.emit(acct, "checkout.session.expired", session, request)
        return session

    # ----- the customer's side of Checkout ------------------------------------------------------

    def _session_for_payment(self, session_id: str) -> tuple[_Account, dict]:
        acct, session = self.locate(session_id, "checkout.session")
        self.sweep_expired(acct)
        if session["status"] != "open":
            raise StripeError(400, f"This Checkout Session is no longer open (status: {session['status']}).",
                              code="checkout_session_not_open", param="session")
        return acct, session

    def _ensure_intent(self, acct: _Account, session: dict) -> dict:
        """Create the session's PaymentIntent on the first confirmation attempt, as Checkout does."""
        if session["payment_intent"]:
            return acct.objects[session["payment_intent"]]
        spec = acct.intent_specs[session["id"]]
        pi_id = _id("pi_")
        pi = {"id": pi_id, "object": "payment_intent", "amount": session["amount_total"], "amount_capturable": 0,
              "amount_details": {"tip": {}}, "amount_received": 0, "application": None,
              "application_fee_amount": None, "automatic_payment_methods": None, "canceled_at": None,
              "cancellation_reason": None, "capture_method": "automatic",
              "client_secret": f"{pi_id}_secret_{_id('', 25)}", "confirmation_method": "automatic",
              "created": _now(), "currency": session["currency"], "customer": None,
              "description": spec["description"], "last_payment_error": None, "latest_charge": None,
              "livemode": False, "metadata": dict(spec["metadata"]), "next_action": None, "on_behalf_of": None,
              "payment_method": None, "payment_method_configuration_details": None,
              "payment_method_options": {}, "payment_method_types": list(session["payment_method_types"]),
              "processing": None, "receipt_email": spec["receipt_email"], "review": None,
              "setup_future_usage": None, "shipping": None, "source": None,
              "statement_descriptor": spec["statement_descriptor"],
              "statement_descriptor_suffix": spec["statement_descriptor_suffix"],
              "status": "requires_payment_method", "transfer_data": None, "transfer_group": None}
        self._add(acct, pi)
        session["payment_intent"] = pi_id
        self.emit(acct, "payment_intent.created", pi)
        return pi

    def _charge(self, acct: _Account, pi: dict, pm: dict, billing: dict, status: str,
                failure: tuple[str, str, str] | None = None) -> dict:
        paid = status == "succeeded"
        outcome = ({"network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                    "seller_message": "Payment complete.", "type": "authorized"} if failure is None else
                   {"network_status": "declined_by_network", "reason": failure[2], "risk_level": "normal",
                    "seller_message": "The bank did not return any further details with this decline.",
                    "type": "issuer_declined"})
        charge = {"id": _id("ch_"), "object": "charge", "amount": pi["amount"],
                  "amount_captured": pi["amount"] if status != "failed" else 0, "amount_refunded": 0,
                  "application": None, "application_fee": None, "application_fee_amount": None,
                  "balance_transaction": _id("txn_") if paid else None, "billing_details": billing,
                  "calculated_statement_descriptor": "STOREHOUSE", "captured": status != "failed",
                  "created": _now(), "currency": pi["currency"], "customer": None,
                  "description": pi["description"], "disputed": False, "failure_balance_transaction": None,
                  "failure_code": failure[0] if failure else None,
                  "failure_message": failure[1] if failure else None, "fraud_details": {}, "livemode": False,
                  "metadata": dict(pi["metadata"]), "on_behalf_of": None,
                  "outcome": None if status == "pending" else outcome, "paid": paid,
                  "payment_intent": pi["id"], "payment_method": pm["id"],
                  "payment_method_details": {pm["type"]: pm[pm["type"]], "type": pm["type"]},
                  "receipt_email": pi["receipt_email"], "receipt_number": None, "receipt_url": None,
                  "refunded": False, "review": None, "shipping": None, "source_transfer": None,
                  "statement_descriptor": None, "statement_descriptor_suffix": None, "status": status,
                  "transfer_data": None, "transfer_group": None}
        return self._add(acct, charge)

    def pay(self, session_id: str, email: str | None, name: str | None, async_payment: bool) -> dict:
        """The customer pays: by card (settles at once) or by bank debit (``async_payment``)."""
        acct, session = self._session_for_payment(session_id)
        billing = _billing(email or session["customer_email"] or "customer@example.com", name)
        session["customer_details"] = {**billing, "tax_exempt": "none", "tax_ids": []}
        if session["amount_total"] == 0:
            self._complete(acct, session, "no_payment_required")
            return session
        pi = self._ensure_intent(acct, session)
        pm = _payment_method(billing, "us_bank_account" if async_payment else "card")
        pi.update(payment_method=pm["id"], last_payment_error=None)
        if async_payment:
            charge = self._charge(acct, pi, pm, billing, "pending")
            pi.update(status="processing", latest_charge=charge["id"])
            self.emit(acct, "charge.pending", charge)
            self.emit(acct, "payment_intent.processing", pi)
            self._complete(acct, session, "unpaid")
        else:
            charge = self._charge(acct, pi, pm, billing, "succeeded")
            pi.update(status="succeeded", amount_received=pi["amount"], latest_charge=charge["id"])
            self.emit(acct, "charge.succeeded", charge)
            self.emit(acct, "payment_intent.succeeded", pi)
            self._complete(acct, session, "paid")
        return session

    def _complete(self, acct: _Account, session: dict, payment_status: str) -> None:
        session.update(status="complete", payment_status=payment_status, url=None)
        acct.open_sessions.discard(session["id"])
        self.emit(acct, "checkout.session.completed", session)

    def decline(self, session_id: str, decline_code: str) -> dict:
        """The customer's card is declined; the session stays open and unpaid."""
        if decline_code not in _DECLINES:
            raise _invalid("decline_code", f"Unknown decline_code; use one of {', '.join(sorted(_DECLINES))}")
        acct, session = self._session_for_payment(session_id)
        code, message, last4 = _DECLINES[decline_code]
        billing = _billing(session["customer_email"] or "customer@example.com", None)
        pi = self._ensure_intent(acct, session)
        pm = _payment_method(billing, "card", last4)
        charge = self._charge(acct, pi, pm, billing, "failed", (code, message, decline_code))
        pi.update(status="requires_payment_method", latest_charge=charge["id"], payment_method=None,
                  last_payment_error={"charge": charge["id"], "code": code, "decline_code": decline_code,
                                      "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
                                      "message": message, "payment_method": pm, "type": "card_error"})
        self.emit(acct, "charge.failed", charge)
        self.emit(acct, "payment_intent.payment_failed", pi)
        return session

    def settle_async(self, session_id: str, succeeded: bool, failure_code: str) -> dict:
        """A bank debit started by ``pay(async_payment=True)`` succeeds or fails days later."""
        acct, session = self.locate(session_id, "checkout.session")
        pi = acct.objects.get(session["payment_intent"] or "")
        if session["status"] != "complete" or pi is None or pi["status"] != "processing":
            raise StripeError(400, "This Checkout Session has no asynchronous payment awaiting settlement.",
                              param="session")
        charge = acct.objects[pi["latest_charge"]]
        if succeeded:
            charge.update(status="succeeded", paid=True, balance_transaction=_id("txn_"),
                          outcome={"network_status": "approved_by_network", "reason": None,
                                   "risk_level": "not_assessed", "seller_message": "Payment complete.",
                                   "type": "authorized"})
            pi.update(status="succeeded", amount_received=pi["amount"])
            session["payment_status"] = "paid"
            self.emit(acct, "charge.succeeded", charge)
            self.emit(acct, "payment_intent.succeeded", pi)
            self.emit(acct, "checkout.session.async_payment_succeeded", session)
        else:
            message = "The customer's bank account could not be debited."
            charge.update(status="failed", captured=False, amount_captured=0, failure_code=failure_code,
                          failure_message=message,
                          outcome={"network_status": "declined_by_network", "reason": failure_code,
                                   "risk_level": "not_assessed", "seller_message": message,
                                   "type": "issuer_declined"})
            pm_id = pi["payment_method"]
            pi.update(status="requires_payment_method", payment_method=None,
                      last_payment_error={"charge": charge["id"], "code": failure_code, "message": message,
                                          "payment_method": {"id": pm_id, "object": "payment_method",
                                                             "type": "us_bank_account"},
                                          "type": "invalid_request_error"})
            self.emit(acct, "charge.failed", charge)
            self.emit(acct, "payment_intent.payment_failed", pi)
            self.emit(acct, "checkout.session.async_payment_failed", session)
        return session


def _billing(email: str, name: str | None) -> dict:
    return {"address": {"city": None, "country": "US", "line1": None, "line2": None, "postal_code": "94103",
                        "state": None}, "email": email, "name": name or "Jenny Rosen", "phone": None}


def _payment_method(billing: dict, kind: str, last4: str = "4242") -> dict:
    details = ({"brand": "visa", "checks": {"address_line1_check": None, "address_postal_code_check": "pass",
                                            "cvc_check": "pass"}, "country": "US", "exp_month": 12,
                "exp_year": time.gmtime().tm_year + 3, "fingerprint": _id("", 16), "funding": "credit",
                "last4": last4, "network": "visa"}
               if kind == "card" else
               {"account_holder_type": "individual", "account_type": "checking", "bank_name": "STRIPE TEST BANK",
                "fingerprint": _id("", 16), "last4": "6789", "routing_number": "110000000"})
    return {"id": _id("pm_"), "object": "payment_method", "billing_details": billing, kind: details,
            "created": _now(), "customer": None, "livemode": False, "metadata": {}, "type": kind}
