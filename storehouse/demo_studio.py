"""The demo's 3D-print studio (seed 002): a studio tenant in AUD with its ABN, GST and bank details,
a few clients, and quotes and invoices in different states, paid and partly paid ones among them
(manual payments through ``studio.ledger``, the one place money changes); its owner and one client
sign in. Its Stripe account (own key on the sandbox, webhook endpoint at this API and its
signing secret) and its Resend account are connected the way the shop demo's are
(``storehouse.demo``, ``storehouse.demo_storefront.connect_webhook``), so invoices can be paid and
emailed. Its print shop: three materials (PLA, PETG, TPU), two printers (a Prusa MK4 and a larger
Prusa XL) and two pricing templates (standard and rush), so a client can upload a model, slice it
and price it at once.

Made once per warehouse: a demo run again finds the studio's documents and leaves them be, and adds only the print
shop's materials, printers and templates it does not have yet (by name).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from people.credentials import Passwords
from people.settings import PeopleSettings
from people.users import create_user, find_user, grant
from storehouse.demo import ADDED_LATER, Connection
from storehouse.demo_people import PASSWORD
from storehouse.demo_storefront import connect_webhook
from studio import clients, invoices, ledger, quotes
from studio.activity import Actor
from studio.business import save_business
from studio.db import writing
from warehouse.tables.studio import studio_quotes
from warehouse.tables.studio_print import studio_materials, studio_printers, studio_product_templates
from warehouse.tenants import add_tenant, get_connection, set_connection
from warehouse.types import now_utc

STUDIO = "print-sydney"
BUSINESS = dict(name="3D Print Sydney", address="Unit 4, 12 Parramatta Rd, Annandale NSW 2038",
                phone="02 9000 3344", email="hello@3dprintsydney.test", abn="51 824 753 556", currency="AUD",
                gst_rate="0.1000", bank_name="Commonwealth Bank", bank_bsb="062-000", bank_account="1234 5678",
                bank_account_name="3D Print Sydney Pty Ltd", payment_terms_days=14, quote_valid_days=30)
CLIENTS = [dict(name="Mia Chen", company="Harbour Robotics", email="mia@harbour-robotics.test", abn="12 345 678 901"),
           dict(name="Liam O'Brien", email="liam@obrien.test", phone="0400 123 456"),
           dict(name="Priya Nair", company="Nair Architecture", email="priya@nair-arch.test")]
PRINT = {"description": "PLA print, 0.2 mm layers, 15 % infill (per part)", "quantity": "12", "unit_price": "18.50"}
RESIN = {"description": "Resin miniature, 0.05 mm", "quantity": "4", "unit_price": "42.00", "discount_percent": "10"}
DESIGN = {"description": "CAD design time (hours)", "quantity": "2.5", "unit_price": "95.00"}
POST = {"description": "Express post", "quantity": "1", "unit_price": "14.95", "tax_rate": "0"}
# The print shop (issue 14): what a client slices and prices on. Costs in AUD.
MATERIALS = [dict(name="PLA Galaxy Black", kind="PLA", colour="black", cost_per_kg=Decimal("29.90"),
                  density_g_cm3=Decimal("1.240"), profile="pla_generic.ini"),
             dict(name="PETG Signal Blue", kind="PETG", colour="#1E5AA8", cost_per_kg=Decimal("34.50"),
                  density_g_cm3=Decimal("1.270"), profile="petg_generic.ini"),
             dict(name="TPU 95A Black", kind="TPU", colour="black", cost_per_kg=Decimal("54.00"),
                  density_g_cm3=Decimal("1.210"), profile="tpu_generic.ini")]
PRINTERS = [dict(name="MK4 #1", model="Original Prusa MK4", hourly_rate=Decimal("4.50"), build_x_mm=250,
                 build_y_mm=210, build_z_mm=220),
            dict(name="XL #1", model="Original Prusa XL", hourly_rate=Decimal("7.00"), build_x_mm=360,
                 build_y_mm=360, build_z_mm=360)]
TEMPLATES = [dict(name="Standard FDM print", setup_fee=Decimal("5.00"), margin_percent=Decimal("40.00"),
                  minimum_price=Decimal("15.00"), rush_multiplier=Decimal("1.500")),
             dict(name="Rush FDM print (48 h)", setup_fee=Decimal("10.00"), margin_percent=Decimal("50.00"),
                  minimum_price=Decimal("25.00"), rush_multiplier=Decimal("1.750"))]
CONNECTIONS = [Connection("stripe", "/stripe", {"secret_key": "sk_test_print_sydney_demo"}),
               Connection("resend", "/resend", {"api_key": "re_sandbox_storehouse_key"},
                          {"from": f"{BUSINESS['name']} <{BUSINESS['email']}>"})]


def demo_studio(engine: sa.Engine, public_url: str, sandbox_url: str) -> list[str]:
    """Make the studio (once) and connect it to the sandbox's Stripe and Resend (every run: the
    sandbox forgets webhook endpoints when it stops); the lines telling what it holds and how to
    sign in to it."""
    staff = Actor("system")
    with engine.begin() as conn:
        add_tenant(conn, STUDIO, BUSINESS["name"])
        for c in CONNECTIONS:
            before = get_connection(conn, STUDIO, c.system)
            kept = {k: before.credentials[k] for k in ADDED_LATER if before and k in before.credentials}
            set_connection(conn, STUDIO, c.system, f"{sandbox_url}{c.path}", {**c.credentials, **kept}, c.options)
        made = conn.execute(sa.select(sa.func.count()).where(studio_quotes.c.tenant_id == STUDIO)).scalar_one()
    if not made:
        with writing(engine) as conn:
            save_business(conn, STUDIO, staff, **BUSINESS)
            ids = [clients.create_client(conn, STUDIO, staff, **c)["id"] for c in CLIENTS]
            mia, liam, priya = ids
            quotes.create_quote(conn, STUDIO, priya, [DESIGN, PRINT], staff, notes="Facade model, 1:200")  # draft
            sent = quotes.create_quote(conn, STUDIO, mia, [PRINT, POST], staff)
            quotes.send_quote(conn, STUDIO, sent, staff)
            declined = quotes.create_quote(conn, STUDIO, liam, [RESIN], staff)
            quotes.send_quote(conn, STUDIO, declined, staff)
            quotes.decline_quote(conn, STUDIO, declined, Actor("client"))
            accepted = quotes.create_quote(conn, STUDIO, mia, [DESIGN, PRINT, POST], staff, notes="Gripper housings")
            quotes.send_quote(conn, STUDIO, accepted, staff)
            quotes.accept_quote(conn, STUDIO, accepted, Actor("client"))
            converted, _ = quotes.convert_quote(conn, STUDIO, accepted, staff)
            invoices.send_invoice(conn, STUDIO, converted["id"], staff)  # issued, due in 14 days
            invoices.create_invoice(conn, STUDIO, liam, [RESIN, POST], staff)  # draft
            late = invoices.create_invoice(conn, STUDIO, priya, [DESIGN], staff,
                                           due_date=now_utc().date() - dt.timedelta(days=10))
            invoices.issue_invoice(conn, STUDIO, late, staff)  # past its due date: overdue
            void = invoices.create_invoice(conn, STUDIO, liam, [PRINT], staff)
            invoices.issue_invoice(conn, STUDIO, void, staff)
            invoices.void_invoice(conn, STUDIO, void, staff, "entered twice")
            paid = invoices.create_invoice(conn, STUDIO, priya, [PRINT, POST], staff)
            _pay(conn, invoices.issue_invoice(conn, STUDIO, paid, staff), "BANK_TRANSFER", None, "CBA 20261201-0042")
            partly = invoices.create_invoice(conn, STUDIO, mia, [DESIGN, RESIN], staff)
            _pay(conn, invoices.send_invoice(conn, STUDIO, partly, staff), "CASH", Decimal("150.00"), "Receipt 0117")
    _print_shop(engine)
    connect_webhook(engine, public_url, STUDIO)
    lines = _users(engine)
    lines.append(f"then:    curl -s -H 'Authorization: Bearer <access_token>' {public_url}/studios/{STUDIO}/quotes")
    lines.append(f"         (a client: {public_url}/studios/{STUDIO}/portal/invoices)")
    lines.append(f"3D models: {public_url}/studios/{STUDIO}/printers, /materials, /product-templates; "
                 "upload to /slicing/files (README: instant quotes)")
    return lines


def _print_shop(engine: sa.Engine) -> None:
    """The studio's materials, printers and templates: those it lacks (by name) are added, every run
    (a warehouse made before the print shop existed gets them too); those it has are left as staff
    changed them."""
    with engine.begin() as conn:
        for table, rows in ((studio_materials, MATERIALS), (studio_printers, PRINTERS),
                            (studio_product_templates, TEMPLATES)):
            have = set(conn.execute(sa.select(table.c.name).where(table.c.tenant_id == STUDIO)).scalars())
            missing = [{"tenant_id": STUDIO, **row} for row in rows if row["name"] not in have]
            if missing:
                conn.execute(sa.insert(table), missing)


def _pay(conn: sa.Connection, invoice: dict, method: str, amount: Decimal | None, reference: str) -> None:
    """A manual payment of ``amount`` (None: the whole balance) on an issued invoice."""
    ledger.record(conn, STUDIO, invoice["id"], kind=ledger.PAYMENT, method=method,
                  amount=invoice["balance_due"] if amount is None else amount, currency=invoice["currency"],
                  reference=reference, actor_kind="staff")


def _users(engine: sa.Engine) -> list[str]:
    s = PeopleSettings()
    passwords = Passwords(s.argon2_memory_kib, s.argon2_time_cost)
    lines = []
    with engine.begin() as conn:
        first_client = str(clients.list_clients(conn, STUDIO, limit=1)[0]["id"])
        for role, email, customer in (("tenant_owner", f"owner@{STUDIO}.demo", None),
                                      ("customer", f"client@{STUDIO}.demo", first_client)):
            user = find_user(conn, email)
            user_id = user["id"] if user else create_user(conn, passwords, email, role.replace("_", " ").title(),
                                                          PASSWORD)
            grant(conn, user_id, STUDIO, role, customer_id=customer)
            lines.append(f"{role:<13} {email:<36} on {STUDIO}" + (f" (client {customer})" if customer else ""))
    return lines
