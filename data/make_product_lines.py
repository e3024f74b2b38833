"""Writes data/product_lines.csv (see data/README.md): an invented furniture store whose titles are
bare product-line names. The lines, makers and descriptions below are written for this project;
each variant adds a size, a configuration or a colour. Deterministic:

    python3 data/make_product_lines.py data/product_lines.csv
"""
import csv
import hashlib
import sys

MAKERS = ["Nordhem", "Tallbo Works", "Ekström & Dotter", "Björkvik", "Lindqvist Hem"]

# (category path, [(line, maker index, description, [(variant suffix, extra sentence, price, finish), ...])])
CATALOG = [
 ("Home > Living room > Sofas", [
  ("SKÄRHOLM", 0, "A low sofa with deep seat cushions, removable covers and solid birch legs.",
   [("2-seat", "Seats two; 164 cm wide.", 4995, "light grey"), ("3-seat", "Seats three; 218 cm wide.", 6495, "light grey"),
    ("corner", "An L-shaped corner sofa for five, with one long side for lying down.", 10995, "dark green"),
    ("with chaise longue", "A three-seat sofa with a chaise longue on the left or right.", 8495, "beige")]),
  ("VALDRUP", 1, "A compact sofa on slim metal legs that fits a small living room or a studio.",
   [("", "Two seats, firm foam cushions, washable cover.", 3495, "rust"), ("3-seat", "Three seats, 199 cm wide.", 4295, "blue"),
    ("sofa bed", "Unfolds into a 140x200 cm bed for guests; bedding fits under the seat.", 5995, "grey")]),
  ("OSTMARK", 3, "A generous three-seat sofa in soft velvet with feather-filled back cushions.",
   [("", "Rounded arms and a sprung seat.", 9995, "mustard yellow")]),
 ]),
 ("Home > Living room > Armchairs", [
  ("TORVALD", 0, "An armchair with a bentwood frame that gives a little as you lean back.",
   [("", "Cushion in washable cotton.", 1495, "natural"), ("with footstool", "Comes with a matching footstool.", 2195, "natural"),
    ("rocking chair", "The same chair on curved runners, for rocking.", 1995, "black-brown")]),
  ("LINNBY", 2, "A wingback armchair with a high back that supports your head and neck.",
   [("", "Upholstered in woven wool blend.", 3995, "dark blue"), ("high back", "An extra tall back for tall readers.", 4495, "grey")]),
  ("HEDVALLA", 4, "A small easy chair with a round seat and short tapered legs, for a reading corner.",
   [("", "Fits where a full armchair would not.", 1795, "terracotta"), ("swivel", "Turns all the way round on a steel base.", 2295, "cream")]),
 ]),
 ("Home > Living room > Coffee tables", [
  ("KARSBO", 1, "A coffee table in oiled oak with a shelf underneath for magazines and remotes.",
   [("round", "Round top, 80 cm across.", 1995, "oak"), ("square", "Square top, 90x90 cm.", 2195, "oak"),
    ("nest of 2", "Two tables that slide one under the other.", 1595, "walnut")]),
  ("ÖVERLID", 3, "A low table with a tempered glass top on a powder-coated steel frame.",
   [("oval", "Oval top, 120x60 cm.", 1795, "black"), ("rectangular", "Rectangular top, 118x58 cm.", 1695, "white"),
    ("", "Square top with a mesh shelf.", 1295, "black")]),
 ]),
 ("Home > Living room > TV benches", [
  ("SANDVRÅ", 0, "A long, low bench for the television with cable holes and open compartments for game consoles.",
   [("120", "120 cm wide.", 1295, "white"), ("180", "180 cm wide with two drawers.", 1995, "white"),
    ("with doors", "Glass doors keep dust off the players.", 2395, "oak effect")]),
  ("GLIMMA", 4, "A media unit for a screen up to 65 inches, with a hidden cable channel.",
   [("low", "Sits on the floor on small feet.", 995, "black"), ("wall-mounted", "Hangs on the wall so the floor stays free.", 1195, "grey")]),
 ]),
 ("Home > Living room > Bookcases", [
  ("HALVDAN", 0, "A bookcase with adjustable shelves; add more sections side by side as the library grows.",
   [("", "80x28x202 cm, five shelves.", 795, "white"), ("40x202", "A narrow 40 cm section for a tight wall.", 545, "white"),
    ("corner", "Turns a corner and joins two rows.", 995, "birch effect"), ("with doors", "Panel doors hide the bottom shelves.", 1295, "black-brown")]),
  ("ORMVIK", 2, "Open shelving in solid pine that works as a bookcase or a room divider.",
   [("low", "Two shelves, 104 cm high.", 695, "untreated pine"), ("tall", "Five shelves, 195 cm high.", 1295, "untreated pine"),
    ("wide", "Two columns of shelves, 160 cm wide.", 1595, "white stained pine")]),
  ("TRASSEL", 3, "A ladder-style bookshelf that leans against the wall, with shelves getting deeper towards the floor.",
   [("", "Five shelves.", 895, "bamboo")]),
 ]),
 ("Home > Bedroom > Bed frames", [
  ("FJÄLLBO", 0, "A bed frame with a high headboard and adjustable sides for mattresses of different thickness.",
   [("single", "For a 90x200 cm mattress.", 1995, "white"), ("double", "For a 160x200 cm mattress.", 2995, "white"),
    ("king", "For a 180x200 cm mattress.", 3495, "oak veneer"), ("with storage", "Four large drawers under the bed.", 4495, "white")]),
  ("RUNDSJÖ", 1, "An upholstered bed frame with a padded headboard to lean on while you read.",
   [("double", "For a 140x200 cm mattress.", 3995, "grey"), ("queen", "For a 160x200 cm mattress.", 4495, "dusty pink")]),
  ("BRINKE", 4, "A low platform bed of solid beech slats, no box spring needed.",
   [("", "For a 160x200 cm mattress.", 3295, "beech")]),
 ]),
 ("Home > Bedroom > Wardrobes", [
  ("GARDEVIK", 0, "A wardrobe with hanging rails, shelves and soft-closing hinges.",
   [("2-door", "100 cm wide, 201 cm high.", 2495, "white"), ("3-door", "150 cm wide with a mirror door.", 3495, "white"),
    ("sliding doors", "Sliding doors need no room to open.", 4995, "grey"), ("corner", "Fills a corner with a deep rail.", 3995, "oak effect")]),
  ("KLÄDVIK", 2, "A freestanding clothes rack of steel tube with a shelf for shoes at the bottom.",
   [("", "For coats and shirts in a hallway or bedroom.", 495, "black"), ("double rail", "Two rails, one above the other.", 695, "white")]),
 ]),
 ("Home > Bedroom > Chests of drawers", [
  ("MÅLSTA", 0, "A chest of drawers with smooth-running drawers and a wall anchor included.",
   [("3 drawers", "80x78 cm.", 995, "white"), ("6 drawers", "Two columns of three, 160x78 cm.", 1795, "black-brown"),
    ("4 drawers narrow", "A tall, narrow chest 40 cm wide.", 895, "white")]),
  ("TVEDE", 3, "A chest in solid pine with wooden knobs and dovetailed drawers.",
   [("2 drawers", "A low chest that doubles as a bedside table.", 695, "pine"), ("5 drawers", "Tall, 108 cm.", 1495, "pine")]),
 ]),
 ("Home > Bedroom > Bedside tables", [
  ("NATTBY", 1, "A small bedside table with room for a lamp, a book and a glass of water.",
   [("1 drawer", "One drawer and a shelf.", 495, "white"), ("open shelf", "Open shelf, no drawer.", 345, "oak effect"),
    ("", "Two drawers, 45 cm wide.", 595, "black")]),
  ("KRONVIK", 4, "A round side table on three legs, for the bedside or next to a sofa.",
   [("", "45 cm across.", 445, "walnut")]),
 ]),
 ("Home > Bedroom > Mattresses", [
  ("SOVDAL", 0, "A pocket spring mattress with a layer of memory foam and a removable cover.",
   [("firm", "Firm support for back and stomach sleepers.", 2995, "white"), ("medium", "Medium firm, suits most sleepers.", 2995, "white"),
    ("soft", "Soft, for side sleepers.", 2995, "white")]),
  ("LUGNÅS", 2, "A foam mattress that rolls up in a box and expands at home.",
   [("foam", "18 cm of cold foam, medium firm.", 1495, "white"), ("pocket spring", "With a pocket spring core for more air.", 2195, "white")]),
 ]),
 ("Home > Dining > Dining tables", [
  ("EKHOLMEN", 3, "A dining table in solid oak with a natural oil finish.",
   [("4-seat", "140x80 cm.", 3495, "oak"), ("6-seat", "200x90 cm.", 4995, "oak"),
    ("extendable", "Pulls out from 160 to 220 cm with a stored leaf.", 5995, "oak")]),
  ("SKOGSVIK", 1, "A dining table for small kitchens.",
   [("round", "Round, 105 cm across, on a pedestal base.", 1995, "white"), ("drop-leaf", "Both leaves fold down to 26 cm deep.", 1495, "birch")]),
 ]),
 ("Home > Dining > Dining chairs", [
  ("STIGBERG", 0, "A dining chair with a curved back and a comfortable shaped seat.",
   [("", "Solid beech.", 695, "beech"), ("with armrests", "With armrests for long dinners.", 895, "black"),
    ("upholstered", "Padded seat and back in a washable cover.", 995, "grey")]),
  ("VIDÅKER", 2, "A lightweight chair for the kitchen or a balcony.",
   [("stackable", "Stacks five high when not in use.", 395, "white"), ("folding", "Folds flat and hangs on a hook.", 345, "green")]),
  ("BENSTOL", 4, "A spindle-back chair in the old farmhouse style.",
   [("", "Turned legs, painted finish.", 795, "blue")]),
 ]),
 ("Home > Dining > Bar stools", [
  ("HÖGBY", 1, "A bar stool with a backrest and a footrest ring.",
   [("63", "Seat height 63 cm, for kitchen counters.", 595, "black"), ("74", "Seat height 74 cm, for bar tables.", 645, "black"),
    ("", "Adjustable seat height with a gas lift.", 795, "chrome")]),
  ("PALLBO", 3, "A backless stool that tucks away under the counter.",
   [("swivel", "Turns on its base.", 495, "oak"), ("backless", "Four splayed wooden legs.", 395, "birch")]),
 ]),
 ("Home > Dining > Sideboards", [
  ("ROSENLUND", 2, "A sideboard for plates, glasses and table linen, with adjustable shelves inside.",
   [("2-door", "Two doors, 120 cm wide.", 2495, "white"), ("4-drawer", "Four drawers for cutlery and napkins.", 2795, "walnut")]),
  ("SKÄNKHOLM", 0, "A long low cabinet with sliding doors in ribbed glass.",
   [("", "160 cm wide.", 3295, "black"), ("high", "A tall version with four shelves.", 3695, "black")]),
 ]),
 ("Home > Office > Desks", [
  ("SKRIVBO", 1, "A desk with a cable tray under the top and room for two monitors.",
   [("120", "120x60 cm.", 995, "white"), ("160", "160x80 cm.", 1495, "oak effect"),
    ("sit/stand", "An electric frame lifts the top from 65 to 125 cm.", 4495, "white")]),
  ("ARNHOLT", 3, "A compact writing desk with a drawer, for a bedroom or a hallway nook.",
   [("", "90x45 cm.", 895, "walnut"), ("wall", "Folds up against the wall when you are done.", 795, "white")]),
 ]),
 ("Home > Office > Office chairs", [
  ("VRIDSTA", 0, "An office chair with adjustable lumbar support, armrests and seat depth.",
   [("", "Mesh back, padded seat.", 1995, "black"), ("high back", "With a headrest.", 2495, "black"),
    ("without armrests", "Slides fully under the desk.", 1595, "grey")]),
  ("KONTORP", 4, "A swivel desk chair on castors for a home office.",
   [("", "Upholstered seat, height adjustable.", 995, "blue"), ("kids", "A smaller chair that grows with the child.", 695, "pink")]),
 ]),
 ("Home > Lighting > Floor lamps", [
  ("LJUSBY", 2, "A floor lamp with an adjustable arm that directs light where you read.",
   [("", "Steel, with an LED bulb.", 695, "black"), ("brass", "Brass-plated arm and head.", 995, "brass")]),
  ("STRÅLBO", 0, "A tall floor lamp with a pleated fabric shade that spreads a soft glow.",
   [("", "150 cm high.", 795, "white"), ("tripod", "On three wooden legs.", 895, "oak/white"), ("uplighter", "Light aimed at the ceiling.", 595, "grey")]),
 ]),
 ("Home > Lighting > Table lamps", [
  ("GLÖDVIK", 1, "A table lamp with a hand-blown glass shade.",
   [("small", "24 cm high.", 395, "amber glass"), ("large", "42 cm high.", 595, "opal glass")]),
  ("LYKTBO", 3, "A desk lamp on a heavy base with a hinged arm.",
   [("", "Warm white LED, dimmable.", 495, "green"), ("clamp", "Clamps to the edge of a desk or shelf.", 395, "white"),
    ("battery", "Rechargeable: carry it to the balcony.", 445, "black")]),
 ]),
 ("Home > Lighting > Pendant lamps", [
  ("HÄNGVIK", 4, "A pendant lamp to hang over a dining table.",
   [("", "A wide metal dome, 38 cm.", 695, "black"), ("rattan", "A woven rattan shade.", 895, "natural")]),
  ("KUPOLA", 0, "A ceiling pendant with a paper shade that diffuses the light evenly.",
   [("45", "45 cm across.", 295, "white"), ("65", "65 cm across.", 395, "white")]),
 ]),
 ("Home > Textiles > Rugs", [
  ("MATTBY", 2, "A flat-woven rug in wool, reversible, for the living room.",
   [("170x240", "170x240 cm.", 1495, "grey"), ("200x300", "200x300 cm.", 2295, "grey"), ("runner", "A hall runner, 80x250 cm.", 695, "blue")]),
  ("VÄVSTA", 1, "A thick high-pile rug that is soft to sit on.",
   [("", "160x230 cm.", 1195, "off-white"), ("round", "Round, 140 cm across.", 895, "beige")]),
 ]),
 ("Home > Hallway > Mirrors", [
  ("SPEGLUND", 0, "A full-length mirror in a slim wooden frame; hang it or lean it against the wall.",
   [("", "50x180 cm.", 795, "oak"), ("arched", "Arched top.", 995, "black")]),
  ("BLANKVIK", 3, "A round wall mirror with a thin metal rim.",
   [("60", "60 cm across.", 495, "gold"), ("80", "80 cm across.", 695, "black")]),
 ]),
 ("Home > Hallway > Shoe storage", [
  ("SKOBERG", 1, "A shoe cabinet with tilting compartments that keep shoes upright in a shallow depth.",
   [("2 compartments", "Holds eight pairs.", 795, "white"), ("3 compartments", "Holds twelve pairs.", 995, "white"),
    ("bench", "A shoe rack with a seat on top for putting boots on.", 695, "bamboo")]),
 ]),
 ("Home > Hallway > Coat racks", [
  ("HÄNGBO", 4, "A coat stand with hooks at two heights, for adults and children.",
   [("", "Solid ash, 180 cm.", 595, "ash"), ("wall", "A wall rack with five hooks and a hat shelf.", 395, "black")]),
  ("KROKSTA", 2, "A row of wooden pegs to screw to the hallway wall.",
   [("", "Seven pegs on a 90 cm rail.", 245, "birch")]),
 ]),
 ("Home > Outdoor > Outdoor chairs", [
  ("SOLBERGA", 0, "A garden chair in acacia wood with a slatted seat that sheds rain.",
   [("", "Folds for the winter.", 495, "brown stained"), ("reclining", "Leans back in five positions.", 795, "brown stained"),
    ("with armrests", "Armrests wide enough for a cup.", 645, "grey stained")]),
  ("ALTANÄS", 3, "A powder-coated steel chair for a balcony or terrace.",
   [("", "Stackable.", 395, "dark grey"), ("lounge", "A low lounge chair with a cushion.", 995, "dark grey")]),
 ]),
 ("Home > Outdoor > Outdoor tables", [
  ("UTEBY", 1, "A garden table for meals outside, with a hole for a parasol.",
   [("4-seat", "140x78 cm.", 1795, "acacia"), ("6-seat", "210x90 cm.", 2495, "acacia"), ("folding", "Folds flat for storage.", 995, "grey")]),
  ("BALKO", 4, "A small table that hooks over a balcony railing.",
   [("", "60x30 cm, drops down when not in use.", 345, "green")]),
 ]),
 ("Home > Children > Children's beds", [
  ("BARNVIK", 2, "A children's bed with a guard rail that stops the child from rolling out.",
   [("", "For a 70x160 cm mattress.", 1495, "white"), ("extendable", "Grows from 135 to 208 cm long.", 1995, "white"),
    ("loft", "A loft bed with room for a desk underneath.", 2995, "white")]),
  ("LEKBY", 0, "A low bed shaped like a little house, for toddlers.",
   [("", "For a 70x140 cm mattress.", 1295, "pine")]),
 ]),
 ("Home > Storage > Shelving units", [
  ("HYLLSTA", 1, "A shelving unit of square compartments; add boxes or doors to any of them.",
   [("2x2", "Four compartments, 77x77 cm.", 495, "white"), ("4x4", "Sixteen compartments, 147x147 cm.", 1295, "white"),
    ("1x4", "Four compartments in a column.", 445, "black-brown"), ("", "Two by four, on its side or upright.", 795, "oak effect")]),
  ("REGALBO", 3, "A galvanised steel shelving system for the garage, the cellar or the pantry.",
   [("", "Five shelves, 180 cm high.", 695, "galvanised"), ("deep", "Deep shelves for boxes.", 895, "galvanised")]),
 ]),
 ("Home > Living room > Footstools & poufs", [
  ("FOTBY", 4, "A round pouf to put your feet up on, or to sit on when guests come.",
   [("", "Knitted cover over a firm filling.", 495, "grey"), ("large", "60 cm across.", 695, "blue")]),
  ("PALLNÄS", 0, "A footstool with storage under the padded lid.",
   [("", "For blankets and board games.", 595, "dark green")]),
 ]),
 ("Home > Kitchen > Kitchen trolleys", [
  ("RULLBO", 1, "A kitchen trolley on castors with three baskets, to roll wherever you need it.",
   [("", "Steel, 77 cm high.", 345, "white"), ("wood top", "With a beech chopping board on top.", 895, "beech/steel")]),
  ("VAGNSTA", 2, "A kitchen island on wheels with a drawer and open shelves.",
   [("", "Solid wood top, 100x60 cm.", 1995, "oak/black")]),
 ]),
 ("Home > Living room > Plant stands", [
  ("VÄXTBO", 3, "A stand that lifts potted plants up towards the window light.",
   [("", "Three tiers.", 395, "black"), ("single", "One plant, 60 cm high.", 245, "brass"), ("ladder", "Five shelves up a ladder frame.", 495, "bamboo")]),
 ]),
 ("Home > Bathroom > Bathroom cabinets", [
  ("BADVIK", 0, "A bathroom cabinet with moisture-resistant doors and adjustable glass shelves.",
   [("mirror", "A wall cabinet with a mirror door and a light above it.", 1295, "white"),
    ("under-sink", "Sits under a washbasin, with a cut-out for the pipes.", 1495, "white"),
    ("tall", "A tall cabinet for towels, 190 cm.", 1795, "grey"), ("", "A small wall cabinet, 40 cm wide.", 595, "oak effect")]),
  ("DUSCHBY", 3, "A slim shelf unit on legs that stands next to the shower.",
   [("", "Bamboo, four shelves.", 445, "bamboo"), ("corner", "A three-tier corner rack.", 345, "chrome")]),
 ]),
 ("Home > Bathroom > Towel rails", [
  ("HANDBO", 1, "A towel rail that dries towels between uses.",
   [("heated", "Electric, warms two bath towels.", 1495, "chrome"), ("ladder", "Leans against the wall, four rungs.", 395, "oak"),
    ("", "Two wall-mounted bars.", 245, "black")]),
 ]),
 ("Home > Kitchen > Wall shelves", [
  ("KRYDDA", 2, "A narrow wall shelf for spice jars, with a rail that stops them sliding off.",
   [("", "40 cm.", 145, "birch"), ("double", "Two shelves, 60 cm.", 245, "white")]),
  ("HYLLBERG", 4, "A floating wall shelf with hidden brackets for cookbooks and cups.",
   [("80", "80 cm long.", 245, "oak"), ("120", "120 cm long.", 345, "oak"), ("with hooks", "A row of hooks underneath for mugs.", 295, "black")]),
 ]),
 ("Home > Hallway > Benches", [
  ("SITTEBY", 0, "A bench for the hallway or the end of a bed.",
   [("", "Solid pine, 110 cm.", 695, "pine"), ("with shoe shelf", "A shelf underneath holds six pairs of shoes.", 795, "white"),
    ("upholstered", "A padded seat.", 995, "grey")]),
 ]),
]


# More finishes of a line's first variant (a catalog lists each colour as its own product).
FINISHES = {
    "SKÄRHOLM": ["dark green", "beige"], "VALDRUP": ["blue", "grey"], "TORVALD": ["black-brown"],
    "LINNBY": ["mustard yellow"], "KARSBO": ["walnut", "white"], "SANDVRÅ": ["black-brown", "oak effect"],
    "HALVDAN": ["black-brown", "birch effect", "oak veneer"], "ORMVIK": ["white stained pine"],
    "FJÄLLBO": ["black-brown", "oak veneer"], "GARDEVIK": ["black-brown", "oak effect"],
    "MÅLSTA": ["black-brown", "oak effect"], "NATTBY": ["black", "oak effect"],
    "EKHOLMEN": ["white oiled oak"], "STIGBERG": ["black", "white"], "HÖGBY": ["white"],
    "SKRIVBO": ["black-brown"], "VRIDSTA": ["grey", "blue"], "LYKTBO": ["black", "white"],
    "MATTBY": ["blue", "beige"], "HYLLSTA": ["black-brown", "oak effect"],
    "SOLBERGA": ["grey stained"], "BARNVIK": ["pine"], "BADVIK": ["grey", "oak effect"],
}
# Lines that also make a product of another category (as a range of furniture shares one name).
CROSSOVERS = [
    ("HALVDAN", 0, "Home > Living room > TV benches", "A TV bench from the same range as the bookcases, with adjustable shelves behind panel doors.", 1495, "white"),
    ("MÅLSTA", 0, "Home > Bedroom > Bedside tables", "A bedside table with two drawers, from the same range as the chests of drawers.", 695, "white"),
    ("EKHOLMEN", 3, "Home > Dining > Dining chairs", "A solid oak dining chair that matches the tables of the same range.", 1195, "oak"),
    ("HYLLSTA", 1, "Home > Living room > TV benches", "A low shelving unit of four square compartments on its side, used as a TV bench.", 595, "white"),
    ("SKRIVBO", 1, "Home > Office > Office chairs", "A simple office chair from the same range as the desks, with a height-adjustable seat.", 895, "white"),
]


def price(value: int) -> str:
    return f"{value // 1000} {value % 1000:03d} kr" if value >= 1000 else f"{value} kr"


def main(path: str) -> None:
    rows = []
    for category, lines in CATALOG:
        for line, maker, description, variants in lines:
            for suffix, extra, cost, finish in variants:
                # Titles are the bare line name, as in a catalog that puts the product type in the
                # description; only a size code (digits and x) stays in the title.
                code = suffix if suffix and set(suffix) <= set("0123456789x") else ""
                name = f"{line} {code}".strip()
                variant = f"{line} {suffix}".strip()
                sku = "PL-" + hashlib.sha256(variant.encode()).hexdigest()[:8]
                kind = f" Variant: {suffix}." if suffix and not code else ""
                rows.append({"sku": sku, "name": name, "maker": MAKERS[maker],
                             "text": f"{description} {extra}{kind}", "cost": price(cost),
                             "category_path": category, "finish": finish})
    firsts = {}
    for row, line in zip(rows, [r["name"].split()[0] for r in rows]):
        firsts.setdefault(line, row)
    for line, finishes in FINISHES.items():
        for finish in finishes:
            first = firsts[line]
            sku = "PL-" + hashlib.sha256(f"{first['sku']} {finish}".encode()).hexdigest()[:8]
            rows.append({**first, "sku": sku, "finish": finish})
    for line, maker, category, text, cost, finish in CROSSOVERS:
        sku = "PL-" + hashlib.sha256(f"{line} {category}".encode()).hexdigest()[:8]
        rows.append({"sku": sku, "name": line, "maker": MAKERS[maker], "text": text,
                     "cost": price(cost), "category_path": category, "finish": finish})
    rows.sort(key=lambda r: r["sku"])  # a store export in SKU order, not grouped by category
    skus = [r["sku"] for r in rows]
    assert len(set(skus)) == len(skus)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} products, {len(CATALOG)} categories", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
