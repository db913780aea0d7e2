"""A synthetic shop's event log and catalog: learnable like a real shop, generated at any scale.

The model behind the log, so that a recommender has real structure to find:
- a two-level category tree; log-normal prices per subcategory; items launched over time (most
  before the log, a steady share during it); a Zipf-like popularity; a latent taste vector per item;
- shoppers with 1-3 preferred top categories and a latent vector, power-law activity, some joining
  during the log; traffic with a daily and weekly cycle, a slow growth and two promotion days;
- each visit is a session of views: its first item follows the shopper's taste, each next one is
  mostly a fixed "related item" of the previous one or a latent neighbour in its subcategory, some
  sessions return to an earlier session's item; items rise and fall (seasonality) and new items get
  a launch boost, so recency matters;
- a funnel view -> add_to_cart (~10%) -> purchase (~40% of carts) driven by taste and price;
  the purchases of one session share an order id.

Sampling is vectorised: an item is drawn by popularity among the launched items of a subcategory
(items are stored by subcategory and launch time, so that is a prefix found by searchsorted), from
a few such candidates the taste, trend and launch boost pick one (a Gumbel-max), and sessions are
generated position by position for a chunk of shoppers at once.
"""

import os
import re
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EVENT_KINDS = ("view", "add_to_cart", "purchase")
VIEW, CART, PURCHASE = 0, 1, 2
EVENT_COLUMNS = ("user_id", "item_id", "event_type", "timestamp", "session_id", "order_id", "category", "price")  # fmt: skip
CATALOG_COLUMNS = ("item_id", "title", "category", "price", "launched_at")
DEFAULT_START = 1735689600  # 2025-01-01T00:00:00Z
DAY = 86400

LATENT_DIM = 16
ITEM_CANDIDATES = 8  # candidates drawn by popularity, one kept by taste/trend/recency
SUBCATEGORY_CANDIDATES = 4
NEIGHBOURS = 8  # fixed related items: 6 in the subcategory, 2 in a complementary one
NEIGHBOUR_P = np.array([0.22, 0.2, 0.13, 0.12, 0.07, 0.06, 0.12, 0.08])
ZIPF_EXPONENT = 0.85
LAUNCHED_DURING_LOG = 0.15
BETA_USER = 4.0  # weight of shopper taste when picking an item
BETA_PREVIOUS = 2.5  # weight of closeness to the previous item within a session
BETA_SUBCATEGORY = 3.0
LAUNCH_BOOST, LAUNCH_BOOST_DAYS = 3.0, 14.0
# Next view of a session: related item / same subcategory / revisit / jump to a new interest.
STEP_P = np.array([0.33, 0.40, 0.08, 0.19]).cumsum()
RETURN_P = 0.2  # a later session of a shopper starts where an earlier one started
MAX_VIEWS = 40
CART_RATE, CONVERT_RATE, BUY_PER_CART = 0.105, 0.5, 0.8  # carts before de-duplication
EVENTS_PER_VIEW = 1.14  # views + carts (after de-duplication) + purchases, measured
SESSION_CHUNK = 100_000
WRITE_CHUNK = 500_000

HOURLY = np.array([0.25, 0.15, 0.1, 0.08, 0.08, 0.12, 0.25, 0.45, 0.65, 0.8, 0.9, 1.0, 1.05, 1.0, 0.95, 0.95, 1.0, 1.1, 1.3, 1.5, 1.6, 1.45, 1.0, 0.55])  # fmt: skip
WEEKLY = np.array([1.05, 1.0, 0.97, 0.97, 0.95, 1.05, 1.25])  # Monday first

CATEGORY_TREE = {
    "Audio": ("Headphones", "Earbuds", "Speakers", "Soundbars", "Turntables", "Amplifiers", "Microphones", "Radios", "Hi-Fi Systems", "Audio Cables", "Portable Speakers", "Headphone Stands"),
    "Computers": ("Laptops", "Desktops", "Monitors", "Keyboards", "Mice", "Webcams", "Docking Stations", "Hard Drives", "Memory Cards", "Routers", "Printers", "Laptop Bags"),
    "Phones & Tablets": ("Smartphones", "Tablets", "Phone Cases", "Screen Protectors", "Chargers", "Power Banks", "Cables", "Car Mounts", "Styluses", "Tablet Cases", "Smartwatches", "Fitness Trackers"),
    "Cameras": ("Mirrorless Cameras", "Compact Cameras", "Action Cameras", "Lenses", "Tripods", "Camera Bags", "Flashes", "Drones", "Memory Cards", "Filters", "Gimbals", "Instant Cameras"),
    "Gaming": ("Consoles", "Controllers", "Gaming Headsets", "Video Games", "Gaming Chairs", "Gaming Mice", "Gaming Keyboards", "VR Headsets", "Capture Cards", "Gift Cards", "Racing Wheels", "Console Storage"),
    "Smart Home": ("Smart Speakers", "Smart Bulbs", "Smart Plugs", "Security Cameras", "Video Doorbells", "Thermostats", "Smart Locks", "Sensors", "Robot Vacuums", "Hubs", "Smart Displays", "Alarm Systems"),
    "Kitchen Appliances": ("Coffee Machines", "Kettles", "Toasters", "Blenders", "Air Fryers", "Microwaves", "Food Processors", "Stand Mixers", "Juicers", "Rice Cookers", "Slow Cookers", "Grills"),
    "Cookware": ("Frying Pans", "Saucepans", "Stock Pots", "Woks", "Casseroles", "Baking Trays", "Knives", "Chopping Boards", "Utensils", "Mixing Bowls", "Food Storage", "Roasting Tins"),
    "Tableware": ("Plates", "Bowls", "Mugs", "Glasses", "Cutlery", "Serving Dishes", "Teapots", "Placemats", "Napkins", "Jugs", "Wine Glasses", "Coasters"),
    "Home Decor": ("Vases", "Candles", "Picture Frames", "Mirrors", "Clocks", "Cushions", "Throws", "Wall Art", "Rugs", "Artificial Plants", "Ornaments", "Diffusers"),
    "Furniture": ("Sofas", "Armchairs", "Dining Tables", "Dining Chairs", "Coffee Tables", "Bookcases", "Desks", "Office Chairs", "Beds", "Wardrobes", "Chests of Drawers", "TV Stands"),
    "Bedding": ("Duvets", "Pillows", "Duvet Covers", "Fitted Sheets", "Mattress Toppers", "Blankets", "Bedspreads", "Pillowcases", "Electric Blankets", "Mattresses", "Kids Bedding", "Weighted Blankets"),
    "Bath": ("Towels", "Bath Mats", "Shower Curtains", "Bathroom Storage", "Soap Dispensers", "Toothbrush Holders", "Bath Robes", "Bathroom Scales", "Shower Heads", "Towel Rails", "Laundry Baskets", "Bath Toys"),
    "Lighting": ("Ceiling Lights", "Floor Lamps", "Table Lamps", "Desk Lamps", "Wall Lights", "Fairy Lights", "Light Bulbs", "Outdoor Lights", "Night Lights", "Lamp Shades", "LED Strips", "Spotlights"),
    "Storage": ("Storage Boxes", "Shelving", "Baskets", "Hooks", "Shoe Racks", "Clothes Rails", "Vacuum Bags", "Drawer Organisers", "Under Bed Storage", "Coat Stands", "Key Holders", "Jewellery Boxes"),
    "Garden": ("Plant Pots", "Seeds", "Garden Tools", "Hoses", "Lawn Mowers", "Garden Furniture", "Barbecues", "Parasols", "Bird Feeders", "Compost", "Greenhouses", "Garden Lights"),
    "Tools": ("Drills", "Screwdrivers", "Saws", "Hammers", "Tool Boxes", "Spanners", "Sanders", "Measuring Tapes", "Ladders", "Workbenches", "Glue Guns", "Safety Gear"),
    "Automotive": ("Car Cleaning", "Dash Cams", "Car Seats", "Roof Boxes", "Jump Starters", "Tyre Inflators", "Car Chargers", "Seat Covers", "Floor Mats", "Motor Oil", "Wiper Blades", "Car Vacuums"),
    "Cycling": ("Road Bikes", "Mountain Bikes", "E-Bikes", "Helmets", "Bike Lights", "Bike Locks", "Pumps", "Cycling Jerseys", "Cycling Shorts", "Saddles", "Tyres", "Bike Computers"),
    "Fitness": ("Dumbbells", "Kettlebells", "Yoga Mats", "Resistance Bands", "Treadmills", "Exercise Bikes", "Rowing Machines", "Benches", "Foam Rollers", "Skipping Ropes", "Pull-Up Bars", "Protein"),
    "Outdoor & Camping": ("Tents", "Sleeping Bags", "Backpacks", "Camping Stoves", "Head Torches", "Hiking Boots", "Water Bottles", "Camping Chairs", "Cool Boxes", "Walking Poles", "Compasses", "Hammocks"),
    "Team Sports": ("Footballs", "Football Boots", "Basketballs", "Rugby Balls", "Cricket Bats", "Hockey Sticks", "Shin Pads", "Goalkeeper Gloves", "Team Shirts", "Training Cones", "Nets", "Kit Bags"),
    "Water Sports": ("Swimsuits", "Goggles", "Wetsuits", "Paddle Boards", "Kayaks", "Snorkels", "Swim Caps", "Life Jackets", "Beach Towels", "Surfboards", "Dry Bags", "Fins"),
    "Women's Clothing": ("Dresses", "Tops", "Jeans", "Skirts", "Jumpers", "Coats", "Jackets", "Trousers", "Blouses", "Leggings", "Nightwear", "Lingerie"),
    "Men's Clothing": ("Shirts", "T-Shirts", "Jeans", "Chinos", "Jumpers", "Coats", "Jackets", "Suits", "Shorts", "Hoodies", "Nightwear", "Underwear"),
    "Kids' Clothing": ("Baby Grows", "School Uniform", "Kids Coats", "Kids Pyjamas", "Kids Dresses", "Kids T-Shirts", "Kids Jeans", "Kids Hoodies", "Kids Socks", "Kids Swimwear", "Kids Shoes", "Fancy Dress"),
    "Shoes": ("Trainers", "Boots", "Sandals", "Heels", "Flats", "Loafers", "Slippers", "Running Shoes", "Walking Shoes", "Wellies", "Shoe Care", "Insoles"),
    "Bags": ("Handbags", "Backpacks", "Tote Bags", "Suitcases", "Wallets", "Purses", "Cross-Body Bags", "Gym Bags", "Laptop Backpacks", "Clutch Bags", "Weekend Bags", "Belt Bags"),
    "Jewellery": ("Necklaces", "Earrings", "Bracelets", "Rings", "Brooches", "Anklets", "Charms", "Cufflinks", "Pendants", "Body Jewellery", "Jewellery Sets", "Hair Accessories"),
    "Watches": ("Analogue Watches", "Digital Watches", "Dive Watches", "Chronographs", "Dress Watches", "Kids Watches", "Watch Straps", "Watch Boxes", "Pocket Watches", "Sports Watches", "Watch Winders", "Hybrid Watches"),
    "Beauty": ("Foundation", "Lipstick", "Mascara", "Eyeshadow", "Nail Polish", "Makeup Brushes", "Concealer", "Blusher", "Eyeliner", "Makeup Bags", "Bronzer", "Setting Spray"),
    "Skincare": ("Moisturisers", "Cleansers", "Serums", "Sun Cream", "Face Masks", "Toners", "Eye Creams", "Exfoliators", "Body Lotion", "Lip Balm", "Night Creams", "Hand Cream"),
    "Hair Care": ("Shampoo", "Conditioner", "Hair Dryers", "Straighteners", "Curling Tongs", "Hair Oils", "Hair Masks", "Hairbrushes", "Hair Clippers", "Dry Shampoo", "Hair Dye", "Styling Gel"),
    "Fragrance": ("Eau de Parfum", "Eau de Toilette", "Body Mists", "Aftershave", "Gift Sets", "Perfume Oils", "Travel Sprays", "Scented Candles", "Room Sprays", "Reed Diffusers", "Solid Perfume", "Colognes"),
    "Health": ("Vitamins", "First Aid", "Thermometers", "Blood Pressure Monitors", "Electric Toothbrushes", "Massagers", "Supplements", "Pain Relief", "Cold Remedies", "Eye Care", "Hearing Care", "Sleep Aids"),
    "Baby": ("Prams", "Car Seats", "Nappies", "Baby Monitors", "High Chairs", "Cots", "Baby Bottles", "Dummies", "Baby Carriers", "Changing Bags", "Baby Wipes", "Teethers"),
    "Toys": ("Building Blocks", "Dolls", "Soft Toys", "Action Figures", "Remote Control Cars", "Puzzles", "Play Kitchens", "Train Sets", "Science Kits", "Outdoor Toys", "Baby Toys", "Arts and Crafts"),
    "Board Games": ("Family Games", "Strategy Games", "Card Games", "Party Games", "Chess Sets", "Jigsaws", "Kids Games", "Word Games", "Dice", "Expansions", "Two-Player Games", "Puzzle Games"),
    "Books": ("Fiction", "Crime", "Science Fiction", "Fantasy", "Biographies", "Cookbooks", "History", "Children's Books", "Self Help", "Travel Guides", "Comics", "Poetry"),
    "Stationery": ("Notebooks", "Pens", "Pencils", "Diaries", "Planners", "Envelopes", "Greeting Cards", "Desk Organisers", "Sticky Notes", "Folders", "Calculators", "Labels"),
    "Art Supplies": ("Paints", "Brushes", "Canvases", "Sketchbooks", "Easels", "Markers", "Coloured Pencils", "Pastels", "Clay", "Palettes", "Ink", "Calligraphy Sets"),
    "Musical Instruments": ("Acoustic Guitars", "Electric Guitars", "Keyboards", "Drums", "Ukuleles", "Violins", "Guitar Amps", "Guitar Strings", "Music Stands", "Harmonicas", "Recorders", "Effects Pedals"),
    "Pet Supplies": ("Dog Food", "Cat Food", "Dog Beds", "Cat Litter", "Leads", "Collars", "Pet Toys", "Scratching Posts", "Aquariums", "Bird Cages", "Pet Carriers", "Grooming"),
    "Grocery": ("Snacks", "Chocolate", "Breakfast Cereal", "Pasta", "Sauces", "Spices", "Baking", "Rice", "Tinned Food", "Soft Drinks", "Nuts", "Sweets"),
    "Coffee & Tea": ("Coffee Beans", "Ground Coffee", "Coffee Pods", "Black Tea", "Green Tea", "Herbal Tea", "Hot Chocolate", "Cafetieres", "Grinders", "Milk Frothers", "Travel Mugs", "Loose Leaf Tea"),
    "Wine & Spirits": ("Red Wine", "White Wine", "Rose Wine", "Sparkling Wine", "Gin", "Whisky", "Rum", "Vodka", "Beer", "Cider", "Liqueurs", "Alcohol-Free"),
    "Party Supplies": ("Balloons", "Banners", "Party Bags", "Tableware Sets", "Candles and Cake Toppers", "Costumes", "Wrapping Paper", "Gift Bags", "Confetti", "Party Lights", "Invitations", "Pinatas"),
    "Office": ("Printer Paper", "Ink Cartridges", "Shredders", "Filing Cabinets", "Whiteboards", "Staplers", "Laminators", "Desk Chairs", "Monitor Arms", "Label Makers", "Presentation Folders", "Postal Supplies"),
    "Travel": ("Suitcases", "Travel Pillows", "Packing Cubes", "Travel Adapters", "Luggage Tags", "Passport Holders", "Toiletry Bags", "Luggage Scales", "Travel Locks", "Money Belts", "Eye Masks", "Travel Bottles"),
    "Crafts & Sewing": ("Yarn", "Knitting Needles", "Sewing Machines", "Fabric", "Thread", "Buttons", "Embroidery Kits", "Crochet Hooks", "Patterns", "Ribbons", "Beads", "Scrapbooking"),
}  # fmt: skip
STYLE_WORDS = ("Classic", "Modern", "Rustic", "Sleek", "Vintage", "Compact", "Deluxe", "Essential", "Premium", "Eco", "Bold", "Minimal", "Cosy", "Sport", "Pro", "Lite", "Urban", "Nordic", "Retro", "Smart", "Soft", "Rugged", "Elegant", "Playful", "Organic", "Heritage", "Studio", "Travel", "Everyday", "Signature", "Artisan", "Bright")  # fmt: skip
COLOUR_WORDS = ("Black", "White", "Grey", "Navy", "Red", "Green", "Blue", "Pink", "Oak", "Sand", "Olive", "Silver")  # fmt: skip


@dataclass(frozen=True)
class SyntheticOptions:
    """What to generate; the same options and seed give the same files."""

    items: int = 5000
    users: int = 20000
    events: int = 300_000
    days: int = 120
    seed: int = 0
    start: int = DEFAULT_START  # epoch seconds UTC of the log's first instant

    def __post_init__(self) -> None:
        if self.items < 10 or self.users < 1 or self.events < 1 or self.days < 1:
            raise ValueError("need items >= 10, users >= 1, events >= 1, days >= 1")

    @property
    def end(self) -> int:
        return self.start + self.days * DAY


@dataclass(eq=False)
class Catalog:
    """Items stored by (subcategory, launch time): the launched items of a subcategory are a prefix."""

    top_names: list[str]
    sub_names: list[str]
    sub_paths: list[str]  # "top-slug/sub-slug"
    sub_top: np.ndarray  # int32 per subcategory
    top_sub_start: np.ndarray  # int64, n_top + 1: subcategories of a top category are contiguous
    sub_start: np.ndarray  # int64, n_sub + 1: items of a subcategory are contiguous
    sub_vectors: np.ndarray  # float32 n_sub x LATENT_DIM
    sub_cum0: np.ndarray  # float64 n_sub + 1: cumulative popularity mass of subcategories
    sub_season: np.ndarray  # float32 n_sub x 3: amplitude, angular frequency (rad/s), phase
    item_sub: np.ndarray  # int32
    launched_at: np.ndarray  # int64 epoch seconds
    launch_key: np.ndarray  # int64: subcategory << 32 | launch offset, ascending
    launch_base: int
    price: np.ndarray  # float64
    price_z: np.ndarray  # float32: log price against its subcategory's
    weight_cum0: np.ndarray  # float64 n + 1: cumulative static popularity
    vectors: np.ndarray  # float32 n x LATENT_DIM, unit length
    trend: np.ndarray  # float32 n x 3: amplitude, angular frequency (rad/s), phase
    neighbours: np.ndarray  # int32 n x NEIGHBOURS: fixed related items
    number: np.ndarray  # int64: the public item number (by launch order)
    titles: list[str] = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.item_sub)


@dataclass(eq=False)
class Shoppers:
    vectors: np.ndarray  # float32 n x LATENT_DIM
    preferred_tops: np.ndarray  # int32 n x 3
    preferred_cum: np.ndarray  # float32 n x 3: cumulative weights over preferred_tops, last is 1
    explore: np.ndarray  # float32: chance a session's interest is not a preferred category
    buyer: np.ndarray  # float32: propensity to cart and buy (log-normal around 1)
    joined_at: np.ndarray  # int64


@dataclass(eq=False)
class EventLog:
    """Events sorted by timestamp; items as catalog positions, users as shopper numbers."""

    users: np.ndarray  # int32
    items: np.ndarray  # int32
    kinds: np.ndarray  # int8 into EVENT_KINDS
    timestamps: np.ndarray  # int64
    sessions: np.ndarray  # int32, from 1
    orders: np.ndarray  # int32, from 1; -1 for non-purchases


@dataclass
class Summary:
    events: int
    target_events: int
    by_kind: dict[str, int]
    users_with_events: int
    items: int
    items_with_events: int
    items_launched_during_log: int
    new_items_with_events: int
    sessions: int
    orders: int
    first_timestamp: int
    last_timestamp: int
    seconds: float = 0.0
    peak_memory_mib: float = 0.0

    def lines(self) -> list[tuple[str, str]]:
        deviation = 100.0 * (self.events - self.target_events) / max(1, self.target_events)
        return [
            ("events (target)", f"{self.events:,} ({self.target_events:,}, {deviation:+.2f}%)"),
            *[(f"  {kind}", f"{n:,}") for kind, n in self.by_kind.items()],
            ("carts per view", f"{self.by_kind['add_to_cart'] / max(1, self.by_kind['view']):.3f}"),
            ("purchases per cart", f"{self.by_kind['purchase'] / max(1, self.by_kind['add_to_cart']):.3f}"),
            ("users with events", f"{self.users_with_events:,}"),
            ("items / with events", f"{self.items:,} / {self.items_with_events:,}"),
            ("items launched during the log / with events", f"{self.items_launched_during_log:,} / {self.new_items_with_events:,}"),
            ("sessions", f"{self.sessions:,}"),
            ("orders", f"{self.orders:,}"),
            ("time span (UTC)", f"{_iso(self.first_timestamp)} .. {_iso(self.last_timestamp)}"),
            ("generation time", f"{self.seconds:.1f} s"),
            ("peak memory", f"{self.peak_memory_mib:,.0f} MiB"),
        ]  # fmt: skip


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("'", "")).strip("-")


def _unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _noise(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """Gaussian vectors of expected length `scale`."""
    return rng.standard_normal((n, LATENT_DIM)) * (scale / np.sqrt(LATENT_DIM))


def _wave(params: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Log-multiplier amplitude * sin(frequency * seconds + phase) of a rise and fall."""
    return params[..., 0] * np.sin(params[..., 1] * seconds + params[..., 2])


def _seasons(rng: np.random.Generator, n: int, max_amplitude: float) -> np.ndarray:
    """Per row: amplitude, angular frequency for a 45-300 day period, phase."""
    amplitude = max_amplitude * rng.random(n) ** 2  # most flat-ish, some strongly seasonal
    period_days = rng.uniform(45, 300, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    return np.stack([amplitude, 2 * np.pi / (period_days * DAY), phase], axis=1).astype(np.float32)


def build_catalog(options: SyntheticOptions, rng: np.random.Generator) -> Catalog:
    """Categories, items with prices, launch times, popularity, tastes, trends and related items."""
    n = options.items
    top_names = list(CATEGORY_TREE)
    n_top = max(2, min(int(np.clip(round(n**0.3), 20, len(top_names))), n // 10))
    top_pick = np.sort(rng.choice(len(top_names), n_top, replace=False))
    top_names = [top_names[t] for t in top_pick]
    subs_per_top = np.minimum(rng.integers(3, 13, n_top), max(1, (n // 5) // n_top))
    sub_top = np.repeat(np.arange(n_top, dtype=np.int32), subs_per_top)
    top_sub_start = np.concatenate([[0], np.cumsum(subs_per_top)]).astype(np.int64)
    sub_names, sub_paths = [], []
    for top, count in zip(top_names, subs_per_top, strict=True):
        chosen = rng.choice(len(CATEGORY_TREE[top]), count, replace=False)
        for name in sorted(CATEGORY_TREE[top][c] for c in chosen):
            sub_names.append(name)
            sub_paths.append(f"{_slug(top)}/{_slug(name)}")
    n_sub = len(sub_top)

    # Items per subcategory: at least one, the rest by log-normal shares.
    shares = rng.lognormal(0.0, 0.8, n_sub)
    counts = 1 + rng.multinomial(n - n_sub, shares / shares.sum())
    item_sub = np.repeat(np.arange(n_sub, dtype=np.int32), counts)

    # Launch times: most before the log (up to ~3 years), a steady share during it; the first
    # item of each subcategory is an old one, so every subcategory always has something to show.
    during = rng.random(n) < LAUNCHED_DURING_LOG
    age = rng.exponential(365 * DAY, n)
    age = np.where(age > 5 * 365 * DAY, rng.uniform(0, 5 * 365 * DAY, n), age)
    before = options.start - age
    launched_at = np.where(
        during, rng.uniform(options.start, options.end, n), before - 3600
    ).astype(np.int64)
    sub_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    launched_at[sub_start[:-1]] = np.minimum(launched_at[sub_start[:-1]], options.start - DAY)
    order = np.lexsort((launched_at, item_sub))
    launched_at = launched_at[order]
    launch_base = int(launched_at.min())
    launch_key = (item_sub.astype(np.int64) << 32) | (launched_at - launch_base)

    # Prices: log-normal per subcategory around a level per top category.
    top_level = rng.normal(np.log(30.0), 0.8, n_top)
    sub_mu = top_level[sub_top] + rng.normal(0.0, 0.4, n_sub)
    sub_sigma = rng.uniform(0.25, 0.7, n_sub)
    price_z = rng.standard_normal(n)
    price = np.exp(sub_mu[item_sub] + sub_sigma[item_sub] * price_z)
    price = np.where(price > 5, np.floor(price) + 0.99, np.round(np.maximum(price, 0.5), 2))

    # Popularity: Zipf over a random ranking; the old first item of a subcategory is never obscure.
    rank = rng.permutation(n) + 1.0
    weight = rank**-ZIPF_EXPONENT
    weight[sub_start[:-1]] = np.maximum(weight[sub_start[:-1]], np.median(weight))
    weight_cum0 = np.concatenate([[0.0], np.cumsum(weight)])
    sub_mass = np.add.reduceat(weight, sub_start[:-1])
    sub_cum0 = np.concatenate([[0.0], np.cumsum(sub_mass)])

    # Latent tastes: top category -> subcategory -> item, each a noisy child of its parent.
    top_vectors = _unit(rng.standard_normal((n_top, LATENT_DIM)))
    sub_vectors = _unit(top_vectors[sub_top] + _noise(rng, n_sub, 0.7))
    vectors = _unit(sub_vectors[item_sub] + _noise(rng, n, 0.8))

    neighbours = _related_items(rng, vectors, item_sub, sub_start, sub_top, top_sub_start)
    number = np.empty(n, dtype=np.int64)
    number[np.argsort(launched_at, kind="stable")] = np.arange(1, n + 1)
    strongest = np.abs(vectors).argmax(axis=1)
    style = 2 * strongest + (vectors[np.arange(n), strongest] < 0)
    colour = rng.integers(0, len(COLOUR_WORDS), n)
    titles = [
        f"Item {num} {STYLE_WORDS[s]} {COLOUR_WORDS[c]} {sub_names[sub]} ({top_names[sub_top[sub]]})"
        for num, s, c, sub in zip(
            number.tolist(), style.tolist(), colour.tolist(), item_sub.tolist(), strict=True
        )
    ]
    return Catalog(
        top_names=top_names,
        sub_names=sub_names,
        sub_paths=sub_paths,
        sub_top=sub_top,
        top_sub_start=top_sub_start,
        sub_start=sub_start,
        sub_vectors=sub_vectors,
        sub_cum0=sub_cum0,
        sub_season=_seasons(rng, n_sub, 1.0),
        item_sub=item_sub,
        launched_at=launched_at,
        launch_key=launch_key,
        launch_base=launch_base,
        price=price,
        price_z=price_z.astype(np.float32),
        weight_cum0=weight_cum0,
        vectors=vectors,
        trend=_seasons(rng, n, 1.5),
        neighbours=neighbours,
        number=number,
        titles=titles,
    )


def _related_items(
    rng: np.random.Generator,
    vectors: np.ndarray,
    item_sub: np.ndarray,
    sub_start: np.ndarray,
    sub_top: np.ndarray,
    top_sub_start: np.ndarray,
) -> np.ndarray:
    """Fixed "related items": latent neighbours in the subcategory (adjacent along a projection)
    and two items of a complementary subcategory (the phone's case)."""
    n, n_sub = len(item_sub), len(sub_top)
    projection = vectors @ rng.standard_normal(LATENT_DIM).astype(np.float32)
    by_projection = np.lexsort((projection, item_sub))  # items of each subcategory, along the axis
    position = np.empty(n, dtype=np.int64)
    position[by_projection] = np.arange(n) - sub_start[item_sub[by_projection]]
    size = np.diff(sub_start)[item_sub]
    first = sub_start[item_sub]
    neighbours = np.empty((n, NEIGHBOURS), dtype=np.int32)
    for slot, offset in enumerate((1, -1, 2, -2, 3, -3)):
        neighbours[:, slot] = by_projection[first + (position + offset) % size]
    # A complement: half the time a sibling subcategory, otherwise any.
    top = sub_top
    siblings = np.diff(top_sub_start)[top]
    sibling = top_sub_start[top] + rng.integers(0, siblings)
    complement = np.where(rng.random(n_sub) < 0.5, sibling, rng.integers(0, n_sub, n_sub))
    clash = complement == np.arange(n_sub)
    complement[clash] = (complement[clash] + 1) % n_sub
    comp = complement[item_sub]
    comp_size = np.diff(sub_start)[comp]
    comp_position = (position * comp_size) // size
    for slot, offset in ((6, 0), (7, 1)):
        neighbours[:, slot] = by_projection[sub_start[comp] + (comp_position + offset) % comp_size]
    return neighbours


def build_shoppers(
    options: SyntheticOptions, catalog: Catalog, rng: np.random.Generator
) -> Shoppers:
    """Tastes (1-3 preferred top categories and a latent vector), propensities, join times."""
    n = options.users
    top_mass = np.add.reduceat(np.diff(catalog.sub_cum0), catalog.top_sub_start[:-1]) ** 0.5
    top_cum = np.cumsum(top_mass) / top_mass.sum()
    preferred = np.searchsorted(top_cum, rng.random((n, 3)), side="right").astype(np.int32)
    preferred = np.minimum(preferred, len(top_mass) - 1)
    how_many = rng.choice(3, n, p=[0.45, 0.35, 0.2]) + 1
    slot_weight = rng.exponential(1.0, (n, 3)) * (np.arange(3) < how_many[:, None])
    cum = np.cumsum(slot_weight, axis=1) / slot_weight.sum(axis=1, keepdims=True)
    cum[:, -1] = 1.0
    top_vectors = np.stack(
        [_unit(catalog.sub_vectors[catalog.top_sub_start[t] : catalog.top_sub_start[t + 1]].sum(0, keepdims=True))[0]
         for t in range(len(catalog.top_names))]
    )  # fmt: skip
    taste = np.einsum("nk,nkd->nd", slot_weight, top_vectors[preferred])
    taste /= slot_weight.sum(axis=1, keepdims=True)
    vectors = _unit(taste + _noise(rng, n, 0.8))
    joined_late = rng.random(n) < 0.45
    joined_at = np.where(
        joined_late, rng.uniform(options.start, options.end - 3600, n), options.start
    ).astype(np.int64)
    return Shoppers(
        vectors=vectors,
        preferred_tops=preferred,
        preferred_cum=cum.astype(np.float32),
        explore=rng.uniform(0.1, 0.35, n).astype(np.float32),
        buyer=rng.lognormal(0.0, 0.5, n).astype(np.float32),
        joined_at=joined_at,
    )


def _traffic(options: SyntheticOptions, rng: np.random.Generator) -> np.ndarray:
    """Cumulative share of visits per hour of the log (leading 0): daily and weekly cycle,
    a slow growth and two promotion days."""
    hours = np.arange(options.days * 24)
    day = hours // 24
    weekday = (options.start // DAY + 3 + day) % 7  # 1970-01-01 was a Thursday
    start_hour = (options.start // 3600) % 24
    weight = HOURLY[(start_hour + hours) % 24] * WEEKLY[weekday] * (1 + 0.35 * day / options.days)
    for boost in (2.2, 1.6):
        promo = rng.integers(0, options.days)
        weight[day == promo] *= boost
    cum = np.concatenate([[0.0], np.cumsum(weight)])
    return cum / cum[-1]


def _sessions(
    options: SyntheticOptions, shoppers: Shoppers, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shopper, start time, number of views) per session, sorted by shopper then time; the views
    add up to what the event target needs."""
    views = max(1, round(options.events / EVENTS_PER_VIEW))
    guess = int(views / 4.0) + 16
    lengths = np.empty(0, dtype=np.int64)
    while lengths.sum() < views:
        more = 1 + np.floor(rng.lognormal(1.0, 0.9, guess)).astype(np.int64)
        lengths = np.concatenate([lengths, np.minimum(more, MAX_VIEWS)])
    total = np.cumsum(lengths)
    n_sessions = int(np.searchsorted(total, views)) + 1
    lengths = lengths[:n_sessions]
    lengths[-1] -= total[n_sessions - 1] - views

    # Activity: everyone visits once if there are sessions enough, the rest follows a power law.
    n_users = options.users
    activity = np.minimum(rng.pareto(1.5, n_users) + 1.0, 200.0)
    p = activity / activity.sum()
    if n_sessions >= n_users:
        per_user = 1 + rng.multinomial(n_sessions - n_users, p)
    else:
        per_user = rng.multinomial(n_sessions, p)
    user = np.repeat(np.arange(n_users, dtype=np.int32), per_user)

    traffic = _traffic(options, rng)
    joined_hour = (shoppers.joined_at[user] - options.start) // 3600
    low = traffic[joined_hour]
    hour = np.searchsorted(traffic, low + rng.random(len(user)) * (1.0 - low), side="right") - 1
    hour = np.clip(hour, 0, options.days * 24 - 1)
    start = options.start + hour * 3600 + rng.integers(0, 3600, len(user))
    order = np.lexsort((start, user))
    return user[order], start[order], lengths[rng.permutation(n_sessions)]


def _choose_subcategories(
    catalog: Catalog,
    shoppers: Shoppers,
    rng: np.random.Generator,
    users: np.ndarray,
    times: np.ndarray,
) -> np.ndarray:
    """A session's interest: mostly a subcategory of a preferred top category, sometimes any;
    candidates by popularity, picked by taste and season."""
    n = len(users)
    explore = rng.random(n) < shoppers.explore[users]
    slot = (rng.random(n)[:, None] > shoppers.preferred_cum[users]).sum(axis=1)
    top = shoppers.preferred_tops[users, np.minimum(slot, 2)]
    first = np.where(explore, 0, catalog.top_sub_start[top])
    last = np.where(explore, len(catalog.sub_top), catalog.top_sub_start[top + 1])
    low, high = catalog.sub_cum0[first], catalog.sub_cum0[last]
    draw = low[:, None] + rng.random((n, SUBCATEGORY_CANDIDATES)) * (high - low)[:, None]
    candidates = np.searchsorted(catalog.sub_cum0, draw, side="right") - 1
    np.clip(candidates, first[:, None], (last - 1)[:, None], out=candidates)
    taste = np.matmul(catalog.sub_vectors[candidates], shoppers.vectors[users][:, :, None])[..., 0]
    season = _wave(catalog.sub_season[candidates], (times - catalog.launch_base)[:, None])
    score = BETA_SUBCATEGORY * taste + season + rng.gumbel(size=taste.shape)
    return candidates[np.arange(n), score.argmax(axis=1)].astype(np.int32)


def _sample_items(
    catalog: Catalog,
    rng: np.random.Generator,
    subs: np.ndarray,
    times: np.ndarray,
    user_vectors: np.ndarray,
    previous: np.ndarray | None = None,
) -> np.ndarray:
    """An item per row from the subcategory's items launched by then: candidates by popularity,
    one kept by taste (and closeness to the previous item), trend and launch boost."""
    n = len(subs)
    first = catalog.sub_start[subs]
    key = (subs.astype(np.int64) << 32) | (times - catalog.launch_base)
    end = np.searchsorted(catalog.launch_key, key, side="right")
    low, high = catalog.weight_cum0[first], catalog.weight_cum0[end]
    draw = low[:, None] + rng.random((n, ITEM_CANDIDATES)) * (high - low)[:, None]
    candidates = np.searchsorted(catalog.weight_cum0, draw, side="right") - 1
    np.clip(candidates, first[:, None], (end - 1)[:, None], out=candidates)
    vectors = catalog.vectors[candidates]
    score = BETA_USER * np.matmul(vectors, user_vectors[:, :, None])[..., 0]
    if previous is not None:
        closeness = np.matmul(vectors, catalog.vectors[previous][:, :, None])[..., 0]
        score += BETA_PREVIOUS * closeness
    score += _item_boost(catalog, candidates, times[:, None])
    score += rng.gumbel(size=score.shape)
    return candidates[np.arange(n), score.argmax(axis=1)].astype(np.int32)


def _item_boost(catalog: Catalog, items: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Log-multiplier of an item's popularity at a time: its rise and fall, and a launch boost."""
    age_days = (times - catalog.launched_at[items]) / DAY
    launch = np.log1p(LAUNCH_BOOST * np.exp(-age_days / LAUNCH_BOOST_DAYS))
    return _wave(catalog.trend[items], times - catalog.launch_base) + launch


def _simulate_chunk(
    catalog: Catalog,
    shoppers: Shoppers,
    rng: np.random.Generator,
    users: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
) -> dict[str, np.ndarray]:
    """Views, carts and purchases of consecutive sessions (all sessions of their shoppers)."""
    n, width = len(users), int(lengths.max())
    present = np.arange(width)[None, :] < lengths[:, None]
    dwell = np.clip(rng.lognormal(np.log(40.0), 1.0, (n, width)), 3, 1800).astype(np.int64)
    dwell[~present] = 0
    times = starts[:, None] + np.concatenate(
        [np.zeros((n, 1), dtype=np.int64), np.cumsum(dwell[:, :-1], axis=1)], axis=1
    )
    user_vectors = shoppers.vectors[users]
    items = np.full((n, width), -1, dtype=np.int32)

    # First views: the session's interest; a returning session starts where an earlier one did.
    interest = _choose_subcategories(catalog, shoppers, rng, users, starts)
    items[:, 0] = _sample_items(catalog, rng, interest, starts, user_vectors)
    returning = np.zeros(n, dtype=bool)
    returning[1:] = (users[1:] == users[:-1]) & (rng.random(n - 1) < RETURN_P)
    root = np.maximum.accumulate(np.where(returning, 0, np.arange(n)))
    items[:, 0] = items[root, 0]

    for j in range(1, width):
        rows = np.flatnonzero(lengths > j)
        t = times[rows, j]
        previous = items[rows, j - 1]
        step = np.searchsorted(STEP_P, rng.random(len(rows)), side="right")
        chosen = np.empty(len(rows), dtype=np.int32)

        related = np.flatnonzero(step == 0)
        slot = np.searchsorted(NEIGHBOUR_P.cumsum(), rng.random(len(related)) * NEIGHBOUR_P.sum())
        slot = np.minimum(slot, NEIGHBOURS - 1)
        candidate = catalog.neighbours[previous[related], slot]
        ok = catalog.launched_at[candidate] <= t[related]
        chosen[related[ok]] = candidate[ok]
        step[related[~ok]] = 1

        revisit = np.flatnonzero(step == 2)
        back = (rng.random(len(revisit)) * j).astype(np.int64)
        chosen[revisit] = items[rows[revisit], back]

        same = np.flatnonzero(step == 1)
        chosen[same] = _sample_items(
            catalog, rng, catalog.item_sub[previous[same]], t[same],
            user_vectors[rows[same]], previous[same],
        )  # fmt: skip

        jump = np.flatnonzero(step == 3)
        subs = _choose_subcategories(catalog, shoppers, rng, users[rows[jump]], t[jump])
        chosen[jump] = _sample_items(catalog, rng, subs, t[jump], user_vectors[rows[jump]])
        items[rows, j] = chosen

    # Funnel: carts by taste, price and the shopper's propensity; one cart per item and session.
    session_of, position = np.nonzero(present)
    viewed = items[session_of, position]
    view_times = times[session_of, position]
    taste = np.einsum("nd,nd->n", catalog.vectors[viewed], user_vectors[session_of])
    logit = -2.5 + 3.0 * taste - 0.4 * catalog.price_z[viewed] + np.log(shoppers.buyer[users])[session_of]  # fmt: skip
    p_cart = 1.0 / (1.0 + np.exp(-logit))
    p_cart = np.minimum(p_cart * (CART_RATE / max(p_cart.mean(), 1e-12)), 0.95)
    carted = np.flatnonzero(rng.random(len(viewed)) < p_cart)
    key = session_of[carted].astype(np.int64) * catalog.size + viewed[carted]
    carted = carted[np.sort(np.unique(key, return_index=True)[1])]
    cart_dwell = dwell[session_of[carted], position[carted]]
    cart_times = view_times[carted] + 1 + (rng.random(len(carted)) * (cart_dwell - 2)).astype(np.int64)  # fmt: skip

    # Purchases: a session with carts converts or not; a converting one buys most of its carts.
    cart_sessions = np.unique(session_of[carted])
    p_convert = np.sqrt(shoppers.buyer[users[cart_sessions]])
    p_convert = np.minimum(p_convert * (CONVERT_RATE / max(p_convert.mean(), 1e-12)), 0.98)
    converting = np.zeros(n, dtype=bool)
    converting[cart_sessions] = rng.random(len(cart_sessions)) < p_convert
    bought = carted[converting[session_of[carted]] & (rng.random(len(carted)) < BUY_PER_CART)]
    buying_sessions, order_local = np.unique(session_of[bought], return_inverse=True)
    session_end = times[np.arange(n), lengths - 1] + dwell[np.arange(n), lengths - 1]
    checkout = session_end + rng.integers(30, 600, n)

    parts = (
        (session_of, viewed, VIEW, view_times, None),
        (session_of[carted], viewed[carted], CART, cart_times, None),
        (session_of[bought], viewed[bought], PURCHASE, checkout[session_of[bought]], order_local),
    )
    return {
        "session": np.concatenate([p[0] for p in parts]).astype(np.int32),
        "user": np.concatenate([users[p[0]] for p in parts]).astype(np.int32),
        "item": np.concatenate([p[1] for p in parts]).astype(np.int32),
        "kind": np.concatenate([np.full(len(p[0]), p[2], dtype=np.int8) for p in parts]),
        "timestamp": np.concatenate([p[3] for p in parts]).astype(np.int64),
        "order": np.concatenate(
            [
                np.full(len(session_of) + len(carted), -1, dtype=np.int32),
                order_local.astype(np.int32),
            ]
        ),
        "orders": np.array(len(buying_sessions)),
    }


def simulate_events(
    options: SyntheticOptions,
    catalog: Catalog,
    shoppers: Shoppers,
    rng: np.random.Generator,
    progress: Callable[[int], None] | None = None,
) -> EventLog:
    """All sessions, chunk by chunk of whole shoppers, then every event sorted by timestamp."""
    users, starts, lengths = _sessions(options, shoppers, rng)
    # Chunks end at a shopper boundary, so a returning session finds its earlier one.
    boundaries = np.flatnonzero(np.diff(users)) + 1
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("user", "item", "kind", "timestamp", "session", "order")}  # fmt: skip
    begin, orders = 0, 0
    while begin < len(users):
        cut = np.searchsorted(boundaries, begin + SESSION_CHUNK)
        end = int(boundaries[cut]) if cut < len(boundaries) else len(users)
        chunk = _simulate_chunk(
            catalog, shoppers, rng, users[begin:end], starts[begin:end], lengths[begin:end]
        )
        chunk["session"] += begin + 1
        chunk["order"][chunk["order"] >= 0] += orders + 1
        orders += int(chunk.pop("orders"))
        for name, values in chunk.items():
            columns[name].append(values)
        if progress:
            progress(int(lengths[begin:end].sum()))
        begin = end
    timestamps = np.concatenate(columns.pop("timestamp"))
    order = np.argsort(timestamps, kind="stable")
    timestamps = timestamps[order]
    sorted_columns = {}
    for name in list(columns):
        sorted_columns[name] = np.concatenate(columns.pop(name))[order]
    return EventLog(
        users=sorted_columns["user"],
        items=sorted_columns["item"],
        kinds=sorted_columns["kind"],
        timestamps=timestamps,
        sessions=sorted_columns["session"],
        orders=sorted_columns["order"],
    )


def write_events_csv(log: EventLog, catalog: Catalog, n_users: int, path: Path) -> None:
    """The events as CSV, written in chunks of pre-formatted column strings."""
    item_labels = np.array([f"i{k}" for k in catalog.number.tolist()], dtype=object)
    tails = np.array(
        [f"{catalog.sub_paths[s]},{p:.2f}" for s, p in zip(catalog.item_sub.tolist(), catalog.price.tolist(), strict=True)],
        dtype=object,
    )  # fmt: skip
    user_labels = np.array([f"u{k}" for k in range(1, n_users + 1)], dtype=object)
    kinds = np.array(EVENT_KINDS, dtype=object)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(EVENT_COLUMNS) + "\n")
        for begin in range(0, len(log.timestamps), WRITE_CHUNK):
            part = slice(begin, begin + WRITE_CHUNK)
            orders = log.orders[part]
            order_labels = np.full(len(orders), "", dtype=object)
            bought = orders >= 0
            order_labels[bought] = list(map(str, orders[bought].tolist()))
            rows = zip(
                user_labels[log.users[part]].tolist(),
                item_labels[log.items[part]].tolist(),
                kinds[log.kinds[part]].tolist(),
                map(str, log.timestamps[part].tolist()),
                map(str, log.sessions[part].tolist()),
                order_labels.tolist(),
                tails[log.items[part]].tolist(),
                strict=True,
            )
            handle.write("\n".join(map(",".join, rows)))
            handle.write("\n")
    os.replace(partial, path)


def write_catalog_csv(catalog: Catalog, path: Path) -> None:
    """item_id,title,category,price,launched_at, by item number."""
    by_number = np.argsort(catalog.number)
    numbers, subs = catalog.number[by_number].tolist(), catalog.item_sub[by_number].tolist()
    prices, launched = catalog.price[by_number].tolist(), catalog.launched_at[by_number].tolist()
    titles = [catalog.titles[i] for i in by_number.tolist()]
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(CATALOG_COLUMNS) + "\n")
        rows = zip(numbers, titles, subs, prices, launched, strict=True)
        handle.write("\n".join(
            f"i{num},{title},{catalog.sub_paths[sub]},{price:.2f},{at}" for num, title, sub, price, at in rows
        ))  # fmt: skip
        handle.write("\n")
    os.replace(partial, path)


def summarise(options: SyntheticOptions, catalog: Catalog, log: EventLog) -> Summary:
    counts = np.bincount(log.kinds, minlength=len(EVENT_KINDS))
    has_events = np.zeros(catalog.size, dtype=bool)
    has_events[log.items] = True
    new = catalog.launched_at >= options.start
    return Summary(
        events=len(log.timestamps),
        target_events=options.events,
        by_kind={kind: int(c) for kind, c in zip(EVENT_KINDS, counts, strict=True)},
        users_with_events=len(np.unique(log.users)),
        items=catalog.size,
        items_with_events=int(has_events.sum()),
        items_launched_during_log=int(new.sum()),
        new_items_with_events=int((new & has_events).sum()),
        sessions=len(np.unique(log.sessions)),
        orders=int(log.orders.max(initial=0)),
        first_timestamp=int(log.timestamps[0]) if len(log.timestamps) else options.start,
        last_timestamp=int(log.timestamps[-1]) if len(log.timestamps) else options.start,
    )


def generate(
    options: SyntheticOptions,
    events_path: Path,
    catalog_path: Path,
    progress: Callable[[int], None] | None = None,
) -> Summary:
    """Build the catalog and shoppers, simulate, write both CSVs; deterministic for the options."""
    began = time.perf_counter()
    rng = np.random.default_rng(options.seed)
    catalog = build_catalog(options, rng)
    shoppers = build_shoppers(options, catalog, rng)
    log = simulate_events(options, catalog, shoppers, rng, progress)
    del shoppers
    events_path.parent.mkdir(parents=True, exist_ok=True)
    catalog_path.parent.mkdir(parents=True, exist_ok=True)
    write_events_csv(log, catalog, options.users, events_path)
    write_catalog_csv(catalog, catalog_path)
    summary = summarise(options, catalog, log)
    summary.seconds = time.perf_counter() - began
    summary.peak_memory_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return summary
