"""What one API process needs to take a studio's money: invoice links, Stripe events, Checkout.

Built once by the app factory beside the shop's ``commerce.services.Services`` (same engine, same
settings, hence the same secret key for links).
"""

from __future__ import annotations

import sqlalchemy as sa

from commerce.settings import CommerceSettings
from studio.checkout import StudioCheckout
from studio.links import InvoiceLinks
from studio.stripe_events import StudioStripeEvents


class StudioPayments:
    def __init__(self, engine: sa.Engine, settings: CommerceSettings) -> None:
        self.engine = engine
        self.links = InvoiceLinks.from_settings(settings)
        self.events = StudioStripeEvents(engine)
        self.checkout = StudioCheckout(engine, self.links, self.events)
