"""The synthetic shop's catalog, the part of its model that a recommender has to find.

A two-level category tree; log-normal prices per subcategory; items launched over time (most
before the log, a steady share during it); a Zipf-like popularity; a latent taste vector per
item; a rise and fall (season) per item and subcategory; and a few fixed "related items" per
item. Items are stored by (subcategory, launch time), so that the launched items of a
subcategory at any moment are a prefix, found by searchsorted.
"""

import re
from dataclasses import dataclass, field

import numpy as np

from recs.datasets.synthetic.options import DAY, SyntheticOptions

LATENT_DIM = 16
NEIGHBOURS = 8  # fixed related items: 6 in the subcategory, 2 in a complementary one
ZIPF_EXPONENT = 0.85
LAUNCHED_DURING_LOG = 0.15

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


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("'", "")).strip("-")


def unit(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1, as float32: tastes compare by dot product."""
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def noise(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """Gaussian vectors of expected length `scale`."""
    return rng.standard_normal((n, LATENT_DIM)) * (scale / np.sqrt(LATENT_DIM))


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
    top_vectors = unit(rng.standard_normal((n_top, LATENT_DIM)))
    sub_vectors = unit(top_vectors[sub_top] + noise(rng, n_sub, 0.7))
    vectors = unit(sub_vectors[item_sub] + noise(rng, n, 0.8))

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
