"""The UCI Online Retail data set as catalog, stock and historic purchase events.

Rules, applied deliberately and counted:
- a row is a *sale* when the invoice is not a cancellation ("C..."), quantity > 0 and price > 0;
- only real product codes (5 digits plus an optional letter suffix) become products; postage,
  fees, manual adjustments, samples and gift vouchers are counted as non-product rows;
- a product code whose title is not merchandise (no letters, the file's "*" mark of an ad-hoc
  line, a charge such as "Next Day Carriage", a gift voucher) is imported inactive: it keeps its
  history, but neither the shop nor the engine offers it (`non_merchandise_reason`);
- a product enters the catalog from any sale, also one without a customer (it was on sale), but
  only sales with a customer become purchase events (there is nobody to attribute the rest to);
- timestamps are UK local time in the file and are converted to UTC.
"""

import csv
import gzip
import hashlib
import io
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

from merch.models import Product
from merch.services.catalog import ProductRecord, StockLevel, set_products_active
from recs.events.records import EventRecord

DATASET_NAME = "uci_online_retail"
DEFAULT_FILE = Path(__file__).resolve().parents[2] / "data" / DATASET_NAME / "online_retail.csv.gz"
UK = ZoneInfo("Europe/London")
PRODUCT_CODE = re.compile(r"^\d{5}[A-Z]{0,2}$")

# Whole titles (upper case, single spaces) of charges and services sold under a product code or
# under one of the codes PRODUCT_CODE already refuses (POST, DOT, C2, M, D, S, B, BANK CHARGES,
# AMAZONFEE, CRUK), so that the rule holds whichever way such a line arrives.
NON_MERCHANDISE_TITLES = frozenset({
    "POSTAGE", "DOTCOM POSTAGE", "CARRIAGE", "NEXT DAY CARRIAGE", "MANUAL", "DISCOUNT",
    "SAMPLES", "ADJUST BAD DEBT", "BANK CHARGES", "AMAZON FEE", "CRUK COMMISSION",
    "HIGH RESOLUTION IMAGE",
})  # fmt: skip
NON_MERCHANDISE_PHRASES = ("GIFT VOUCHER",)

# First match wins; order matters ("CHRISTMAS CANDLE" is Christmas, "CAKE TIN" is Baking).
# Words match whole words of the upper-case description.
CATEGORY_RULES: list[tuple[tuple[str, str], tuple[str, ...]]] = [
    (("Seasonal", "Christmas"), ("CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWFLAKE", "NATIVITY", "BAUBLE", "SNOWMAN")),
    (("Seasonal", "Easter"), ("EASTER", "EGG", "BUNNY", "CHICK", "CHICKS")),
    (("Seasonal", "Halloween"), ("HALLOWEEN", "SKULL", "SKULLS")),
    (("Kitchen & Dining", "Baking"), ("CAKE", "CAKES", "CUPCAKE", "BAKING", "CAKESTAND", "MOULD", "SCONE", "BISCUIT", "PASTRY", "COOKIE", "MUFFIN")),
    (("Kitchen & Dining", "Mugs & Cups"), ("MUG", "MUGS", "CUP", "CUPS", "TEACUP", "TEACUPS", "SAUCER", "BEAKER", "BEAKERS")),
    (("Kitchen & Dining", "Tableware"), ("PLATE", "PLATES", "BOWL", "BOWLS", "NAPKINS", "NAPKIN", "CUTLERY", "TRAY", "TRAYS", "COASTER", "COASTERS", "PLACEMAT", "PLACEMATS", "JUG", "TEAPOT", "GLASS", "GLASSES", "STRAWS", "PARTY", "BUNTING")),
    (("Kitchen & Dining", "Kitchen Tools"), ("APRON", "OVEN", "GLOVE", "TEA", "TOWEL", "TOWELS", "KITCHEN", "SPOON", "SPOONS", "CHOPPING", "JAM", "RECIPE", "SCALES", "TIMER", "COOKING")),
    (("Bags & Storage", "Lunch Boxes & Bottles"), ("LUNCH", "LUNCHBOX", "BOTTLE", "FLASK")),
    (("Bags & Storage", "Bags"), ("BAG", "BAGS", "TOTE", "SHOPPER", "PURSE", "HANDBAG", "BACKPACK", "RUCKSACK", "WASHBAG")),
    (("Bags & Storage", "Tins, Jars & Boxes"), ("TIN", "TINS", "JAR", "JARS", "BOX", "BOXES", "STORAGE", "BASKET", "BASKETS", "CRATE", "TRUNK", "CASE", "DRAWER")),
    (("Home", "Candles & Lights"), ("CANDLE", "CANDLES", "T-LIGHT", "TLIGHT", "LANTERN", "LIGHT", "LIGHTS", "LAMP", "NIGHTLIGHT", "CANDLESTICK", "INCENSE")),
    (("Home", "Signs & Plaques"), ("SIGN", "SIGNS", "PLAQUE", "METAL")),
    (("Home", "Clocks & Frames"), ("CLOCK", "FRAME", "FRAMES", "MIRROR", "PHOTO", "ALARM")),
    (("Home", "Cushions & Textiles"), ("CUSHION", "CUSHIONS", "BLANKET", "THROW", "QUILT", "DOORMAT", "MAT", "CURTAIN", "HOT", "WATER")),
    (("Home", "Decorations"), ("HANGING", "DECORATION", "DECORATIONS", "HEART", "HEARTS", "ORNAMENT", "WREATH", "GARLAND", "CHIME", "CHIMES", "VASE", "DOORSTOP", "HOOK", "HOOKS", "HANGER", "HANGERS", "BIRD", "BIRDS")),
    (("Stationery & Gifts", "Cards & Wrap"), ("CARD", "CARDS", "WRAP", "WRAPPING", "RIBBON", "RIBBONS", "TAG", "TAGS", "ENVELOPE", "ENVELOPES", "TISSUE", "TISSUES", "GIFT")),
    (("Stationery & Gifts", "Stationery"), ("PEN", "PENS", "PENCIL", "PENCILS", "NOTEBOOK", "NOTEBOOKS", "NOTE", "MEMO", "STICKER", "STICKERS", "ERASER", "RUBBER", "RUBBERS", "RULER", "DIARY", "JOURNAL", "CALENDAR", "BOOK", "PAD", "CHALK", "STAMP", "STAMPS")),
    (("Toys & Games", "Toys & Games"), ("TOY", "TOYS", "GAME", "GAMES", "PUZZLE", "DOLL", "DOLLY", "DOLLS", "SOLDIERS", "SPINNING", "TOP", "JIGSAW", "PLAYHOUSE", "BALLOON", "BALLOONS", "SKIPPING", "ROPE", "KIT", "CRAYONS", "COLOURING", "PAINT", "DOMINOES", "MARBLES", "TEDDY")),
    (("Garden", "Garden"), ("GARDEN", "PLANT", "PLANTER", "POT", "POTS", "WATERING", "SEED", "SEEDS", "FLOWER", "FLOWERS", "BIRDHOUSE", "FEEDER", "PARASOL", "UMBRELLA", "PICNIC")),
    (("Fashion & Accessories", "Jewellery"), ("NECKLACE", "BRACELET", "EARRINGS", "RING", "RINGS", "BROOCH", "JEWEL", "JEWELLERY", "DIAMANTE", "BEAD", "BEADS", "CHARM")),
    (("Fashion & Accessories", "Accessories"), ("HAIR", "CLIP", "CLIPS", "SLIDE", "SLIDES", "SCARF", "HAT", "MIRROR", "KEYRING", "KEY", "WALLET", "GLOVES", "SOCKS", "SLIPPERS", "COMB")),
    (("Home", "Bathroom"), ("SOAP", "BATH", "BATHROOM", "TOOTHBRUSH", "TOILET", "SPONGE")),
]  # fmt: skip
OTHER_CATEGORY = ("Other", "Other")

COLOURS = ("RED", "PINK", "BLUE", "GREEN", "WHITE", "BLACK", "IVORY", "CREAM", "YELLOW", "PURPLE", "ORANGE", "GOLD", "SILVER", "BROWN", "GREY", "TURQUOISE", "LILAC")  # fmt: skip
MATERIALS = ("WOOD", "WOODEN", "GLASS", "METAL", "ZINC", "CERAMIC", "PAPER", "FELT", "FELTCRAFT", "ENAMEL", "WICKER", "LEATHER", "COTTON", "PORCELAIN", "TIN", "CARDBOARD", "PLASTIC", "CRYSTAL", "SILVER", "GOLD")  # fmt: skip
PACK_SIZE = re.compile(r"\b(?:SET|PACK|BOX|BAG)\s+OF\s+(\d+)\b")
WORD = re.compile(r"[A-Z0-9][A-Z0-9'\-]*")


def category_for(description: str) -> tuple[str, str]:
    """Two-level category from the description's words (first matching rule wins)."""
    words = set(WORD.findall(description.upper()))
    for category, keywords in CATEGORY_RULES:
        if words.intersection(keywords):
            return category
    return OTHER_CATEGORY


def attributes_for(description: str) -> dict[str, object]:
    words = set(WORD.findall(description.upper()))
    attributes: dict[str, object] = {}
    colours = [c.lower() for c in COLOURS if c in words]
    if colours:
        attributes["colour"] = colours[0] if len(colours) == 1 else colours
    materials = sorted({"wood" if m == "WOODEN" else m.lower() for m in MATERIALS if m in words})
    if materials:
        attributes["material"] = materials[0] if len(materials) == 1 else materials
    pack = PACK_SIZE.search(description.upper())
    if pack:
        attributes["pack_size"] = int(pack.group(1))
    return attributes


_KEEP_UPPER = {"3D", "UK", "USA", "LED", "DIY", "XL", "S/3", "S/4", "S/6", "II", "III"}


def title_case(description: str) -> str:
    """'WHITE HANGING HEART T-LIGHT HOLDER' -> 'White Hanging Heart T-Light Holder'."""

    def word(text: str) -> str:
        if text in _KEEP_UPPER or any(ch.isdigit() for ch in text):
            return text
        return "-".join(part[:1].upper() + part[1:].lower() for part in text.split("-"))

    return " ".join(word(w) for w in description.split())


def non_merchandise_reason(title: str) -> str:
    """Why a title is not something to sell ("" when it is): a title with no letter at all
    ("3", "?"); one that starts with a mark rather than a word ("*USB Office Mirror Ball": the
    file marks ad-hoc, one-off lines with "*"); a known charge or service ("Next Day Carriage",
    "Postage", "Bank Charges", ...) or a gift voucher. Titles that only contain such a word
    ("French Carriage Lantern", "Bank Account Greeting Card") are products."""
    text = " ".join(title.upper().split())
    if not any(ch.isalpha() for ch in text):
        return "no_letters"
    if not text[0].isalnum():
        return "marked_not_a_product"
    if text in NON_MERCHANDISE_TITLES or any(p in text for p in NON_MERCHANDISE_PHRASES):
        return "charge_or_service"
    return ""


def deactivate_non_merchandise() -> dict[str, str]:
    """Make inactive the active products whose titles are not merchandise, as an import today
    would have imported them: a catalog imported before the rule is corrected without reading
    the file again. Returns title by SKU of the products it deactivated."""
    found = {
        pk: (sku, title)
        for pk, sku, title in Product.objects.filter(is_active=True).values_list(
            "pk", "sku", "title"
        )
        if non_merchandise_reason(title)
    }
    set_products_active(list(found), is_active=False)
    return dict(sorted(found.values()))


def stock_level_for(sku: str) -> StockLevel:
    """Deterministic demo stock: about 5 % sold out, otherwise 1-250 on hand, a few reserved."""
    h = zlib.crc32(sku.encode())
    if h % 100 < 5:
        return StockLevel(sku, on_hand=0, reserved=0)
    on_hand = 1 + (h >> 8) % 250
    reserved = min((h >> 16) % 4, on_hand - 1)
    return StockLevel(sku, on_hand=on_hand, reserved=reserved)


@dataclass
class ImportSummary:
    rows_read: int = 0
    sales: int = 0
    skipped: Counter = field(default_factory=Counter)
    non_product_codes: Counter = field(default_factory=Counter)
    products: int = 0
    # Imported inactive, by SKU: (reason, title); see non_merchandise_reason.
    non_merchandise: dict[str, tuple[str, str]] = field(default_factory=dict)
    products_in_other: int = 0
    purchase_events: int = 0
    customers: int = 0
    countries: int = 0

    def as_dict(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "sales": self.sales,
            "skipped": dict(self.skipped),
            "top_non_product_codes": dict(self.non_product_codes.most_common(10)),
            "products": self.products,
            "non_merchandise_products": {
                sku: {"reason": reason, "title": title}
                for sku, (reason, title) in sorted(self.non_merchandise.items())
            },
            "products_in_other": self.products_in_other,
            "purchase_events": self.purchase_events,
            "customers": self.customers,
            "countries": self.countries,
        }


@dataclass
class _ProductTally:
    descriptions: Counter = field(default_factory=Counter)
    prices: Counter = field(default_factory=Counter)
    first_sold: datetime | None = None


@dataclass
class ParsedDataset:
    products: list[ProductRecord]
    events: list[EventRecord]
    summary: ImportSummary


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _rows(path: Path) -> Iterator[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as raw:
        yield from csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))


def parse_online_retail(
    path: Path, *, limit: int | None = None, progress: Callable[[int], None] | None = None
) -> ParsedDataset:
    """Read the file once; return catalog records, purchase events and the counts."""
    summary = ImportSummary()
    tallies: dict[str, _ProductTally] = defaultdict(_ProductTally)
    events: list[EventRecord] = []
    customers: set[str] = set()
    countries: set[str] = set()
    for line_number, row in enumerate(_rows(path), start=2):
        if limit is not None and summary.rows_read >= limit:
            break
        summary.rows_read += 1
        if progress and summary.rows_read % 10000 == 0:
            progress(10000)
        invoice = row["InvoiceNo"].strip()
        code = row["StockCode"].strip().upper()
        description = " ".join(row["Description"].split())
        if invoice.startswith("C"):
            summary.skipped["cancellation"] += 1
            continue
        if not PRODUCT_CODE.match(code):
            summary.skipped["non_product_code"] += 1
            summary.non_product_codes[code] += 1
            continue
        try:
            quantity = int(row["Quantity"])
            price = Decimal(row["UnitPrice"])
        except (ValueError, InvalidOperation):
            summary.skipped["unparseable"] += 1
            continue
        if quantity <= 0:
            summary.skipped["non_positive_quantity"] += 1
            continue
        if price <= 0:
            summary.skipped["non_positive_price"] += 1
            continue
        summary.sales += 1
        occurred_at = (
            datetime.strptime(row["InvoiceDate"], "%Y-%m-%d %H:%M:%S")
            .replace(tzinfo=UK)
            .astimezone(UTC)
        )
        tally = tallies[code]
        if description:
            tally.descriptions[description] += 1
        tally.prices[price] += 1
        if tally.first_sold is None or occurred_at < tally.first_sold:
            tally.first_sold = occurred_at
        customer = row["CustomerID"].strip().removesuffix(".0")
        if not customer:
            summary.skipped["sale_without_customer_no_event"] += 1
            continue
        customers.add(customer)
        country = row["Country"].strip()
        countries.add(country)
        events.append(
            EventRecord(
                event_id=f"uci-{invoice}-{line_number}",
                event_type="purchase",
                occurred_at=occurred_at,
                user_id=customer,
                session_id=f"uci-{invoice}",
                product_sku=code,
                quantity=quantity,
                price=price,
                order_id=invoice,
                country=country,
                context={"source": DATASET_NAME},
            )
        )
    products = []
    for code, tally in sorted(tallies.items()):
        if not tally.descriptions:
            summary.skipped["product_without_description"] += 1
            continue
        description = tally.descriptions.most_common(1)[0][0]
        category = category_for(description)
        summary.products_in_other += category == OTHER_CATEGORY
        title = title_case(description)
        if reason := non_merchandise_reason(title):
            summary.non_merchandise[code] = (reason, title)
        # The most frequent price; ties resolved to the lower price, deterministically.
        top = max(tally.prices.values())
        price = min(p for p, n in tally.prices.items() if n == top)
        products.append(
            ProductRecord(
                sku=code,
                title=title,
                price=price,
                category_path=category,
                description=" / ".join(title_case(d) for d, _ in tally.descriptions.most_common(3)),
                currency="GBP",
                attributes=attributes_for(description),
                launched_at=tally.first_sold,
                is_active=not reason,
            )
        )
    known = {p.sku for p in products}
    events = [e for e in events if e.product_sku in known]
    summary.products = len(products)
    summary.purchase_events = len(events)
    summary.customers = len({e.user_id for e in events})
    summary.countries = len(countries)
    return ParsedDataset(products=products, events=events, summary=summary)


def stock_levels(products: list[ProductRecord]) -> list[StockLevel]:
    return [stock_level_for(p.sku) for p in products]
