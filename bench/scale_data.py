"""A large, realistic catalogue written by Postgres itself (generate_series), for scale tests.

Names and titles are built from word lists, countries follow a long-tailed distribution, and a
few rare values exist on purpose, so that the selective filters a real client sends (a rare
country, a rare word in a title) have something to find:

- `RARE_TITLE_WORD` is in about one title in `RARE_WORD_EVERY` (100 of 10,000,000 books);
- `RARE_NAME_WORD` is in about one author name in `RARE_WORD_EVERY`;
- countries are ranked: country r has a share of about 1 / (r * ln(COUNTRIES)), from about 10%
  for the most common to 0.015% for the rarest; `RARE_COUNTRY` holds about 0.1% of authors.

Rows are written by a handful of INSERT ... SELECT statements with a fixed random seed, so the
same sizes give the same catalogue. Loading is meant for the seed's schema (revision 0002, no
secondary indexes): indexes are then built once over the whole table, much faster than row by
row.
"""

import contextlib
from dataclasses import dataclass

import asyncpg

COUNTRIES = 1000
RARE_WORD_EVERY = 100_000
RARE_TITLE_WORD = "wizard"
RARE_NAME_WORD = "Quillfeather"
# Country rank with a share of ~0.1% (1 / (r ln 1000) = 0.001 at r = 145).
RARE_COUNTRY_RANK = 145
SEED = 0.42


def words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = words(
    """
    Ada Alan Alice Amara Anders Anna Arjun Aya Beatriz Bruno Camille Carlos Chen Chiara Dara
    Daniel Diego Elena Elif Emil Emma Farah Felix Fatima Gabriel Grace Hana Hugo Ines Ingrid
    Isaac Ivan Jamal Jana Javier Jin Joao Jonas Julia Kai Karin Kenji Lars Laura Leila Leon
    Lina Luca Lucia Maja Malik Marco Maria Mateo Mei Mila Mohammed Nadia Naomi Nia Nikolai Nina
    Noah Omar Oscar Paula Pedro Priya Rafael Ravi Rosa Ruth Sami Sara Sofia Sven Tamar Theo
    Tomas Uma Valentina Vera Victor Wei Yara Yusuf Zara Zoe
    """
)
SURNAMES = words(
    """
    Abbott Adeyemi Alvarez Andersen Arnaud Bakker Barros Becker Bianchi Blanc Boateng Brennan
    Brooks Castillo Chandra Costa Cruz Dahl Dubois Duarte Eriksen Esposito Evans Ferrari
    Fischer Fontaine Garcia Gomez Gupta Haddad Hansen Hartmann Herrera Ibrahim Ito Jansen
    Jensen Kaur Keller Khan Kim Koch Kowalski Kumar Lambert Larsen Laurent Lee Lopez Mahmoud
    Marino Martin Meyer Moreau Morales Muller Murphy Nakamura Nguyen Nielsen Novak Okafor Olsen
    Ortiz Park Patel Perez Petrov Quinn Ramos Reyes Ricci Rossi Sato Schmidt Silva Singh Sousa
    Suzuki Tanaka Torres Van Vargas Vogel Wagner Walker Weber Wong Yilmaz Young Zhang
    Zimmermann
    """
)
TITLE_WORDS = words(
    """
    amber ancient autumn bitter black blue broken bright burning city clockwork cold crimson
    crown dark dawn deep desert distant dream dust echo empire empty endless evening falling
    feather field fire forest forgotten garden ghost glass golden gray harbor heart hidden
    hollow house hunger iron island journey kingdom lantern last letter light lion lost marble
    memory midnight mirror moon morning mountain night north ocean orchard paper path quiet
    rain raven red river road salt sea secret shadow silent silver sky small song spring star
    stone storm summer sun thunder tide tower twilight valley velvet voice wall water white
    wild willow wind winter wolf wooden year
    """
)
SYLLABLES = words(
    """
    al an ar bel cor da el en far gal hal ir is ka lan mar nor or ra sal tan ur va zen
    """
)
# Deterministic: setseed() for random() in this session, then one statement per table.
SEEDED = "SELECT setseed($1)"

# Author g: a first name and a surname (rarely RARE_NAME_WORD), a long-tailed country, a bio
# for one author in three, created in id order over the last twenty years.
INSERT_AUTHORS = """
INSERT INTO authors (id, name, bio, country, created_at)
SELECT g,
       ($2::text[])[1 + floor(random() * cardinality($2::text[]))::int] || ' ' ||
       CASE WHEN random() * $5 < 1 THEN $6
            ELSE ($3::text[])[1 + floor(random() * cardinality($3::text[]))::int] END,
       CASE WHEN g % 3 = 0 THEN 'Writes about ' || ($4::text[])[1 + g % cardinality($4::text[])]
            ELSE NULL END,
       ($7::text[])[least(cardinality($7::text[]),
                          floor(power(cardinality($7::text[])::float8, random()))::int)],
       timestamptz '2005-01-01 00:00:00+00' + g * (interval '20 years' / $1)
FROM generate_series(1, $1) AS g
"""

# Book n: two to five title words (rarely followed by RARE_TITLE_WORD), any author,
# created in id order.
INSERT_BOOKS = """
INSERT INTO books (id, title, author_id, created_at)
SELECT n,
       initcap(array_to_string(ARRAY(
           SELECT ($3::text[])[1 + floor(random() * cardinality($3::text[]))::int]
           FROM generate_series(1, 2 + n % 4)
       ), ' ') || CASE WHEN random() * $4 < 1 THEN ' ' || $5 ELSE '' END),
       1 + floor(random() * $2)::int,
       timestamptz '2005-01-01 00:00:00+00' + n * (interval '20 years' / $1)
FROM generate_series(1, $1) AS n
"""

RESET_SEQUENCES = (
    "SELECT setval(pg_get_serial_sequence('authors', 'id'), greatest(max(id), 1)) FROM authors",
    "SELECT setval(pg_get_serial_sequence('books', 'id'), greatest(max(id), 1)) FROM books",
)


@dataclass(frozen=True)
class ScaleCatalogue:
    authors: int
    books: int


def country_names() -> list[str]:
    """COUNTRIES made-up names, most common first: three syllables and the rank."""
    names = []
    for rank in range(1, COUNTRIES + 1):
        parts = (rank * 7, rank * 13, rank * 31 + rank // 24)
        word = "".join(SYLLABLES[part % len(SYLLABLES)] for part in parts)
        names.append(f"{word.capitalize()} {rank}")
    return names


def rare_country() -> str:
    """A country with about 0.1% of the authors."""
    return country_names()[RARE_COUNTRY_RANK - 1]


async def load(connection: asyncpg.Connection, catalogue: ScaleCatalogue) -> None:
    """Write the catalogue into empty tables, in one transaction, then ANALYZE them.

    Foreign keys are not checked row by row (`session_replication_role = replica`, which needs
    a superuser; without one they are checked, only slower): every author_id is drawn from
    1..authors, which this same transaction writes.
    """
    async with connection.transaction():
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await connection.execute("SET LOCAL session_replication_role = replica")
        await connection.execute("SET LOCAL synchronous_commit = off")
        await connection.fetchval(SEEDED, SEED)
        await connection.execute(
            INSERT_AUTHORS,
            catalogue.authors,
            FIRST_NAMES,
            SURNAMES,
            TITLE_WORDS,
            RARE_WORD_EVERY,
            RARE_NAME_WORD,
            country_names(),
        )
        await connection.execute(
            INSERT_BOOKS,
            catalogue.books,
            catalogue.authors,
            TITLE_WORDS,
            RARE_WORD_EVERY,
            RARE_TITLE_WORD,
        )
        for statement in RESET_SEQUENCES:
            await connection.execute(statement)
    await connection.execute("ANALYZE authors, books")
