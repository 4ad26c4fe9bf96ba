"""The normalisation rules as pure functions, and the golden product from six POS dialects."""

import datetime as dt
from decimal import Decimal

import pytest

from syncing.pos_normalise import (
    NormaliseOptions, customer_row, effects_and_flavours, inventory_row, map_categories, parse_overrides, product_row,
    smart_case, standardise_name, strain,
)
from syncing.pos_units import cannabinoid_profile, net_quantity, to_price
from resources.pos import blaze, cova, dutchie, flowhub, shopify, treez
from resources.pos.base import PosCustomer, PosInventoryItem, Potency, translate
from warehouse.syncs import Rejected

# The golden product (sandbox/pos_catalog.py: Cresco "Blue Dream" 3.5 g) as each POS sends it.
GOLDEN = {
    "treez": {"product_id": "f32ad579-264e-40b2-ad57-000000000000", "product_status": "ACTIVE",
              "last_updated_at": "2023-12-31T17:00:00.000-07:00", "category_type": "FLOWER",
              "product_configurable_fields": {"name": "BLUE DREAM 3.5G", "brand": "CRESCO", "uom": "GRAMS", "amount": 3.5,
                                              "size": "3.5G", "classification": "HYBRID", "subtype": None},
              "sellable_quantity_detail": [{"inventory_type": "ADULT", "location_id": "loc-1", "sellable_quantity": 24}],
              "pricing": {"price_type": "FLAT", "price_sell": 45.0},
              "attributes": {"general": [], "flavors": ["Berry", "Sweet", "Herbal"], "effects": ["Happy", "Uplifted", "Creative"]},
              "product_barcodes": [{"sku": "CRS-BD-0035", "type": "SKU"}],
              "lab_results": [{"result_type": "THC", "amount": {"minimum_value": 22.5, "maximum_value": 22.5}, "amount_type": "PERCENTAGE"},
                              {"result_type": "CBD", "amount": {"minimum_value": 0.1, "maximum_value": 0.1}, "amount_type": "PERCENTAGE"}]},
    "dutchie": {"productId": 100000, "sku": "CRS-BD-0035", "productName": "Blue Dream | 3.5g", "masterCategory": "Flower",
                "category": "Flower", "strainType": "Hybrid", "size": "3.5g", "netWeight": 3.5, "netWeightUnit": "g",
                "brandName": "Cresco", "isActive": True, "thcContent": 22.5, "thcContentUnit": "%", "cbdContent": 0.1,
                "cbdContentUnit": "%", "price": 45.0, "medPrice": 40.5, "recPrice": 45.0, "flavor": "Berry, Sweet, Herbal",
                "tags": [{"tagId": 10, "tagName": "Happy"}, {"tagId": 11, "tagName": "Uplifted"}, {"tagId": 12, "tagName": "Creative"}],
                "lastModifiedDateUTC": "2024-01-01T00:00:00.000"},
    "blaze": {"id": "fd396adb2ce194de00000000", "modified": 1704067200000, "deleted": False, "sku": "CRS-BD-0035",
              "name": "Blue Dream (3.5g)", "active": True, "brandName": "Cresco",
              "category": {"name": "Flowers", "cannabis": True}, "flowerType": "Sativa Dominant", "unitPrice": 45.0,
              "weightPerUnit": "EIGHTH", "customWeight": None, "thc": 22.5, "cbd": 0.1, "thca": 0.0, "cbda": 0.0, "cbn": 0.0,
              "cbg": 0.0, "potencyAmount": {"thc": 0.0, "cbd": 0.0, "cbn": 0.0, "thca": 0.0, "cbda": 0.0},
              "tags": ["Happy", "Uplifted", "Creative", "Berry", "Sweet", "Herbal"],
              "quantities": [{"inventoryId": "inv-1", "quantity": 24.0}]},
    "flowhub": {"productId": "b042ca2b-7357-4ad7-a86b-000000000000", "productName": "FLOWER - Blue Dream 3.5g [CRESCO]",
                "brand": "Cresco", "category": "Flower", "speciesName": "Sativa-dom", "sku": "CRS-BD-0035", "quantity": 16,
                "inventoryUnitOfMeasure": "units", "productWeight": 3.5, "productUnitOfMeasure": "g", "priceInMinorUnits": 4500,
                "currencyCode": "USD",
                "cannabinoidInformation": [{"name": "thc", "lowerRange": 22.5, "upperRange": 22.5, "unitOfMeasure": "%"},
                                           {"name": "cbd", "lowerRange": 0.1, "upperRange": 0.1, "unitOfMeasure": "%"}],
                "expirationDate": "2027-06-30", "packageId": "1A4FF0300000022000000101", "batchId": "BD-2406-A",
                "effects": ["Happy", "Uplifted", "Creative"], "flavors": ["Berry", "Sweet", "Herbal"],
                "locationId": "loc-1", "productUpdatedAt": "2024-01-01T00:00:00.000Z", "isActive": True},
    "cova": {"ProductId": "e17c9e07-c325-4373-abcf-000000000000", "Name": "Cresco - Blue Dream (3.5g)", "Sku": "CRS-BD-0035",
             "Brand": "Cresco", "ClassificationName": "Dried Flower", "IsActive": True, "IsDeleted": False,
             "UpdatedDateUtc": "2024-01-01T00:00:00Z",
             "Specifications": [{"Name": "Cannabis", "Fields": [
                 {"DisplayName": "Strain", "Value": "Blue Dream", "Unit": None},
                 {"DisplayName": "Net Weight", "Value": "3.5", "Unit": "g"},
                 {"DisplayName": "Effects", "Value": "Happy, Uplifted, Creative", "Unit": None},
                 {"DisplayName": "Flavours", "Value": "Berry, Sweet, Herbal", "Unit": None},
                 {"DisplayName": "Strain Type", "Value": "Sativa Dominant Hybrid", "Unit": None},
                 {"DisplayName": "THC Min", "Value": "225", "Unit": "mg/g"}, {"DisplayName": "THC Max", "Value": "225", "Unit": "mg/g"},
                 {"DisplayName": "CBD Min", "Value": "1", "Unit": "mg/g"}, {"DisplayName": "CBD Max", "Value": "1", "Unit": "mg/g"}]}],
             "Prices": [{"LocationId": 201, "RegularPrice": 45.0}]},
    "shopify": {"id": 7652490000000, "title": "Blue Dream", "vendor": "Cresco", "product_type": "Flower", "status": "active",
                "updated_at": "2023-12-31T19:00:00-05:00",
                "tags": "CBD: 0.1%, Effect: Creative, Effect: Happy, Effect: Uplifted, Flavor: Berry, Flavor: Herbal, "
                        "Flavor: Sweet, Hybrid, Sativa-dominant, THC: 22.5%",
                "variants": [{"id": 4652490000000, "title": "3.5g", "price": "45.00", "sku": "CRS-BD-0035", "grams": 4,
                              "weight": 0.125, "weight_unit": "oz", "inventory_item_id": 5152490000000}]},
}
TRANSLATE = {
    "treez": lambda raw: translate(raw, treez.TreezProduct, "product_id", treez.product_record),
    "dutchie": lambda raw: translate(raw, dutchie.DutchieProduct, "productId", dutchie.product_record),
    "blaze": lambda raw: translate(raw, blaze.BlazeProduct, "id", blaze.product_record),
    "flowhub": lambda raw: translate(raw, flowhub.FlowhubRow, "productId", flowhub.product_record),
    "cova": lambda raw: translate(raw, cova.CovaProduct, "ProductId", lambda p: cova.product_record(p, 201)),
    "shopify": lambda raw: translate(raw, shopify.ShopifyProduct, "id", shopify.product_records)[0],
}
# Provenance differs by design; the lean is only said by four of the six (asserted separately).
PROVENANCE = {"source", "product_id", "source_name", "source_category", "stock_ref", "attributes", "source_updated_at", "strain_lean"}
EXPECTED = {
    "tenant_id": "t", "sku": "CRS-BD-0035", "name": "Blue Dream", "brand": "Cresco", "size": "3.5g",
    "category": "cannabis/flower", "categories": ["cannabis/flower"], "strain_type": "hybrid",
    "effects": ["Creative", "Happy", "Uplifted"], "flavors": ["Berry", "Herbal", "Sweet"],
    "cannabinoids": {"thc": {"min": "22.5", "max": "22.5", "unit": "%"}, "cbd": {"min": "0.1", "max": "0.1", "unit": "%"}},
    "thc_min_pct": Decimal("22.5"), "thc_max_pct": Decimal("22.5"), "cbd_min_pct": Decimal("0.1"), "cbd_max_pct": Decimal("0.1"),
    "thc_mg": None, "cbd_mg": None, "weight_g": Decimal("3.5"), "volume_ml": None, "alcohol_pct": None,
    "price": Decimal("45.00"), "currency": "USD", "status": "active", "deleted_at": None,
}


def test_golden_product_from_six_pos_formats_is_one_catalog_row():
    rows = {system: product_row("t", TRANSLATE[system](raw)) for system, raw in GOLDEN.items()}
    for system, row in rows.items():
        assert {k: v for k, v in row.items() if k not in PROVENANCE} == EXPECTED, system
        assert row["source_updated_at"] == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), system
    assert {s: r["strain_lean"] for s, r in rows.items()} == {
        "treez": None, "dutchie": None, "blaze": "sativa", "flowhub": "sativa", "cova": "sativa", "shopify": "sativa"}
    assert rows["shopify"]["stock_ref"] == "5152490000000"  # how Shopify stock finds its product


def test_a_malformed_record_is_rejected_with_its_reason_not_raised():
    raw = {**GOLDEN["dutchie"], "productName": ""}
    out = TRANSLATE["dutchie"](raw)
    assert isinstance(out, Rejected) and out.reason.startswith("productName") and out.source_id == "100000"


@pytest.mark.parametrize("raw, brand, labels, size, expected", [
    ("BLUE DREAM 3.5G", "CRESCO", ["FLOWER"], "3.5G", ("Blue Dream", "3.5g")),
    ("FLOWER - OG Kush 28g [CRESCO]", "Cresco", ["Flower"], None, ("OG Kush", "28g")),
    ("Cresco - GSC (5pk 0.5g)", "Cresco", [], None, ("GSC", "5pk 0.5g")),
    ("OG KUSH 1G", None, [], None, ("OG Kush", "1g")),
    ("DO-SI-DOS", None, [], None, ("Do-Si-Dos", None)),
    ("EDIBLE - Berry Gummies 10pk 100mg [KIVA]", "Kiva", ["Edible"], None, ("Berry Gummies", "10pk 100mg")),
    ("MED - Jack Herer | 3.5g", None, [], None, ("Jack Herer", "3.5g")),
    ("Sour Diesel™ – Wyld", "Wyld", [], None, ("Sour Diesel", None)),
    ("CHÂTEAU DES PINS 2019", None, [], "750 ml", ("Château des Pins 2019", "750ml")),
    ("510 BATTERY EACH", None, ["MERCH"], "EACH", ("510 Battery", "each")),
    ("Papa & Barkley Releaf Balm", "Papa & Barkley", [], None, ("Releaf Balm", None)),
])
def test_names_lose_pos_prefixes_and_suffixes_and_get_one_capitalisation(raw, brand, labels, size, expected):
    assert standardise_name(raw, brand, labels, size) == expected


def test_mixed_case_is_the_sources_spelling_and_is_kept():
    assert smart_case("iPhone Case by LaVida") == "iPhone Case by LaVida"
    assert smart_case("GRANDDADDY PURPLE") == "Granddaddy Purple"


@pytest.mark.parametrize("labels, expected", [
    (["FLOWER"], ["cannabis/flower"]),
    (["Pre-Rolls"], ["cannabis/pre-roll"]),
    (["PreRoll"], ["cannabis/pre-roll"]),
    (["CARTRIDGE"], ["cannabis/vape"]),
    (["Wax"], ["cannabis/concentrate"]),
    (["Oils"], ["cannabis/tincture"]),
    (["Beverages", "Edibles"], ["cannabis/edible/beverage"]),  # the ancestor is implied, not repeated
    (["Vin rouge", "Vin rouge sec"], ["alcohol/wine/red"]),
    (["Spiritueux", "Whisky écossais"], ["alcohol/spirits/whisky"]),
    (["Bière", "Bière blonde"], ["alcohol/beer"]),
    (["Edibles", "Topicals"], ["cannabis/edible", "cannabis/topical"]),  # several categories
    (["NON-INV"], ["unmapped"]),
    ([], ["unmapped"]),
])
def test_categories_map_through_one_hierarchy_with_aliases(labels, expected):
    assert map_categories(labels) == expected


def test_tenant_overrides_win_and_may_name_several_categories():
    overrides = parse_overrides({"category_overrides": {"NON-INV": "accessories", "House Specials": ["flower", "cannabis/pre-roll"]}})
    assert map_categories(["NON-INV"], overrides) == ["accessories"]
    assert map_categories(["house specials"], overrides) == ["cannabis/flower", "cannabis/pre-roll"]
    assert map_categories(["Gift cards"], overrides) == ["unmapped"]


@pytest.mark.parametrize("labels, tags, expected", [
    (["HYBRID"], [], ("hybrid", None)),
    (["Sativa Dominant"], [], ("hybrid", "sativa")),
    (["Indica-dom"], [], ("hybrid", "indica")),
    (["Sativa Dominant Hybrid"], [], ("hybrid", "sativa")),
    ([], ["Hybrid", "Sativa-dominant", "Staff pick"], ("hybrid", "sativa")),
    (["CBD"], [], ("cbd", None)),
    (["Indica"], [], ("indica", None)),
    ([], ["Staff pick"], (None, None)),
])
def test_strain_type_and_lean(labels, tags, expected):
    assert strain(labels, tags) == expected


def test_effects_and_flavours_are_canonical_sorted_and_found_in_tags():
    effects, flavours = effects_and_flavours(["relaxing"], ["Blueberry"], ["Sleepy", "Pine", "Staff pick"])
    assert effects == ["Relaxed", "Sleepy"] and flavours == ["Berry", "Pine"]


def test_potency_is_percent_with_ranges_kept_and_mg_only_when_grams_are_unknown():
    p = cannabinoid_profile([Potency(name="THC", low=Decimal("180"), high=Decimal("240"), unit="mg/g")], None)
    assert p == {"thc": {"min": Decimal("18"), "max": Decimal("24"), "unit": "%"}}
    p = cannabinoid_profile([Potency(name="THC", low=Decimal("800"), high=Decimal("850"), unit="MILLIGRAMS")], Decimal("1"))
    assert p["thc"] == {"min": Decimal("80"), "max": Decimal("85"), "unit": "%"}  # 800 mg in 1 g = 80 %
    p = cannabinoid_profile([Potency(name="THC", low=Decimal("100"), high=Decimal("100"), unit="mg")], None)
    assert p["thc"] == {"min": Decimal("100"), "max": Decimal("100"), "unit": "mg"}
    with pytest.raises(ValueError):
        cannabinoid_profile([Potency(name="THC", low=Decimal(1), unit="ppm")], None)


@pytest.mark.parametrize("size, amount, unit, expected", [
    ("3.5g", None, None, (Decimal("3.5"), None)),
    ("5pk 0.5g", None, None, (Decimal("2.5"), None)),
    ("3.5g", Decimal("0.125"), "oz", (Decimal("3.5"), None)),
    (None, Decimal("0.125"), "oz", (Decimal("3.5"), None)),  # an eighth is the trade 3.5 g
    (None, Decimal("0.25"), "oz", (Decimal("7"), None)),
    (None, None, "EIGHTH", (Decimal("3.5"), None)),
    (None, Decimal("2.2"), "CUSTOM_GRAMS", (Decimal("2.2"), None)),
    ("355ml", Decimal("355"), "g", (None, Decimal("355"))),  # the label says ml; Shopify's grams do not
    ("10pk 100mg", Decimal("1"), "EACH", (None, None)),  # 100 mg is content, not weight
    ("each", Decimal("0"), "g", (None, None)),  # zero weight = not set
    (None, Decimal("30"), "MILLILITERS", (None, Decimal("30"))),
])
def test_net_quantity_in_grams_or_ml(size, amount, unit, expected):
    assert net_quantity(size, amount, unit) == expected


def test_prices_are_exact_decimals_rounded_to_cents():
    assert to_price(Decimal("45.0")) == Decimal("45.00")
    assert to_price(Decimal(4500) / 100) == Decimal("45.00")
    assert to_price(Decimal("19.995")) == Decimal("20.00")
    with pytest.raises(ValueError):
        to_price(Decimal("-1"))


def test_inventory_rows_know_lots_weights_availability_and_low_stock():
    opts = NormaliseOptions(low_stock_threshold=Decimal(5))
    lot = inventory_row("t", PosInventoryItem(source="dutchie", product_id="1", lot_id="BD-2406-A", quantity=Decimal(3),
                                              quantity_unit="ea", compliance_id="1A4F", expires_on=dt.date(2027, 6, 30)), opts)
    assert (lot["tracking"], lot["quantity"], lot["available"], lot["low_stock"]) == ("lot", Decimal(3), True, True)
    bulk = inventory_row("t", PosInventoryItem(source="flowhub", product_id="2", quantity=Decimal("0.5"), quantity_unit="oz"), opts)
    assert (bulk["tracking"], bulk["quantity"], bulk["quantity_unit"], bulk["increment"]) == ("weight", Decimal(14), "g", Decimal("0.5"))
    capped = inventory_row("t", PosInventoryItem(source="treez", product_id="3", quantity=Decimal(30), capped_at=Decimal(30)), opts)
    assert capped["quantity_capped"] and not capped["low_stock"]
    gone = inventory_row("t", PosInventoryItem(source="blaze", product_id="4", quantity=Decimal(9), deleted=True), opts)
    assert not gone["available"] and gone["deleted_at"] is not None


def test_customer_rows_normalise_pii_and_derive_what_analysts_may_see():
    row = customer_row("t", PosCustomer(
        source="treez", source_id="c1", first_name="AVA", last_name="thompson", email=" Ava.Thompson1@Example.com ",
        phone="555-123-4567", birth_date=dt.date(1988, 4, 2), postal_code="80202", state="co", gender="female",
        customer_type="MEDICAL", status="ACTIVE"))
    assert (row["first_name"], row["last_name"], row["email"], row["phone"]) == ("Ava", "Thompson", "ava.thompson1@example.com", "+15551234567")
    assert (row["birth_year"], row["postal_prefix"], row["state"], row["gender"]) == (1988, "802", "CO", "F")
    assert (row["customer_type"], row["status"]) == ("medical", "active")
    assert customer_row("t", PosCustomer(source="x", source_id="2", medical_id="MMJ1"))["customer_type"] == "medical"
