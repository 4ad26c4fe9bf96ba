"""The one catalog vocabulary: category hierarchy with aliases, effects, flavours, acronyms.

Data, not logic (``syncing.pos_normalise`` applies it). A category is a path in one tree
(``cannabis/edible/beverage``); its ancestors are implied. Aliases are matched after
``label_key`` folding (case, accents, punctuation, camelCase), so "Pre-Rolls", "PREROLL" and
"PreRoll" are one alias. Anything not matched goes to ``UNMAPPED`` and stays visible.
"""

UNMAPPED = "unmapped"

CATEGORY_ALIASES: dict[str, tuple[str, ...]] = {
    "cannabis/flower": ("flower", "flowers", "dried flower", "bud", "buds", "smalls", "shake", "popcorn"),
    "cannabis/pre-roll": ("pre roll", "pre rolls", "preroll", "prerolls", "joint", "joints", "blunt", "blunts",
                          "infused pre rolls", "infused preroll"),
    "cannabis/vape": ("vape", "vapes", "vape pen", "vape pens", "vaporizer", "vaporizers", "cartridge", "cartridges",
                      "cart", "carts", "disposable", "disposables", "pod", "pods"),
    "cannabis/concentrate": ("concentrate", "concentrates", "extract", "extracts", "wax", "shatter", "rosin",
                             "live resin", "resin", "budder", "badder", "crumble", "diamonds", "distillate",
                             "hash", "kief", "sauce", "dab", "dabs"),
    "cannabis/edible": ("edible", "edibles", "gummy", "gummies", "chocolate", "chocolates", "candy", "mints",
                        "baked goods", "cooking"),
    "cannabis/edible/beverage": ("beverage", "beverages", "drink", "drinks", "seltzer", "soda", "shot", "shots"),
    "cannabis/capsule": ("pill", "pills", "capsule", "capsules", "tablet", "tablets"),
    "cannabis/tincture": ("tincture", "tinctures", "oil", "oils", "sublingual", "drops", "spray", "sprays"),
    "cannabis/topical": ("topical", "topicals", "balm", "balms", "lotion", "lotions", "salve", "salves",
                         "transdermal", "patch", "patches", "bath"),
    "cannabis/plant": ("plant", "plants", "clone", "clones", "seed", "seeds"),
    "accessories": ("accessory", "accessories", "merch", "merchandise", "gear", "apparel", "paraphernalia",
                    "glass", "hardware", "battery", "batteries", "papers", "grinder", "grinders"),
    "alcohol/wine": ("vin", "vins", "wine", "wines"),
    "alcohol/wine/red": ("vin rouge", "red wine", "red wines"),
    "alcohol/wine/white": ("vin blanc", "white wine", "white wines"),
    "alcohol/wine/rose": ("vin rose", "rose wine", "rose"),
    "alcohol/wine/sparkling": ("vin mousseux", "mousseux", "sparkling", "sparkling wine", "champagne", "cava",
                               "prosecco", "cremant"),
    "alcohol/beer": ("biere", "bieres", "beer", "beers", "ale", "lager", "cidre", "cider"),
    "alcohol/spirits": ("spiritueux", "spirit", "spirits", "liquor", "vodka", "gin", "rum", "rhum", "tequila",
                        "cognac", "brandy", "liqueur"),
    "alcohol/spirits/whisky": ("whisky", "whiskey", "whisky ecossais", "scotch", "bourbon", "rye"),
}

# Canonical effect -> the words sources use for it.
EFFECTS: dict[str, tuple[str, ...]] = {
    "Relaxed": ("relaxed", "relaxing", "relax", "relaxation"),
    "Happy": ("happy", "happiness"),
    "Euphoric": ("euphoric", "euphoria"),
    "Uplifted": ("uplifted", "uplifting"),
    "Creative": ("creative", "creativity"),
    "Sleepy": ("sleepy", "sleep", "sedated", "sedating"),
    "Focused": ("focused", "focus"),
    "Energetic": ("energetic", "energizing", "energising", "energy"),
    "Hungry": ("hungry", "appetite"),
    "Calm": ("calm", "calming"),
    "Tingly": ("tingly",),
    "Talkative": ("talkative", "social"),
    "Giggly": ("giggly",),
    "Aroused": ("aroused", "arousal"),
}

FLAVOURS: dict[str, tuple[str, ...]] = {
    "Berry": ("berry", "berries", "blueberry", "strawberry"),
    "Citrus": ("citrus", "orange"),
    "Earthy": ("earthy", "earth"),
    "Pine": ("pine", "piney"),
    "Diesel": ("diesel", "fuel", "gas"),
    "Sweet": ("sweet", "sugary"),
    "Herbal": ("herbal", "herb"),
    "Grape": ("grape",),
    "Lemon": ("lemon", "lime"),
    "Skunk": ("skunk", "skunky"),
    "Spicy": ("spicy", "spice", "pepper", "peppery"),
    "Vanilla": ("vanilla",),
    "Mint": ("mint", "minty"),
    "Tropical": ("tropical", "mango", "pineapple"),
    "Woody": ("woody", "wood"),
    "Floral": ("floral", "flowery"),
    "Cheese": ("cheese", "cheesy"),
    "Coffee": ("coffee",),
}

STRAIN_WORDS = ("indica", "sativa", "hybrid", "cbd")

# Kept upper-case when a name arrives all in capitals ("OG KUSH" -> "OG Kush", not "Og Kush").
ACRONYMS = frozenset({
    "OG", "GSC", "ACDC", "CBD", "THC", "CBN", "CBG", "THCA", "CBDA", "GDP", "GG4", "AK", "XL", "XXL", "LA", "SFV",
    "UK", "USA", "MAC", "RSO", "BHO", "CO2", "MCT", "PAX", "II", "III", "IV", "SAQ", "IPA", "VS", "VSOP", "XO", "AOC",
})
SMALL_WORDS = frozenset({"of", "and", "the", "de", "du", "des", "la", "le", "les", "et", "en", "d", "by", "with"})

# POS-specific prefixes that say where or how an item is sold, not what it is ("MED - ", "REC: ").
POS_PREFIXES = ("med", "rec", "medical", "recreational", "adult use", "au", "online", "web", "zz")
