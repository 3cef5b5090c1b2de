"""The global search's own index: one row per searchable word, filled by triggers on the record (migration 0402).

- ``search_term``: (practice, kind, word, entity). ``kind`` is what a hit opens and which field matched:
  ``client`` and ``patient`` (words of the name) and ``postcode`` (a client's postcode without the space);
  invoice numbers are searched in the invoice table's own index (migration 0307). Words are lower case, split on anything that is not a letter or digit. Exact and
  prefix lookups are range scans of the primary key (practice, kind, word, entity), at most a page per visible
  practice, so a common name among 250,000 patients costs reading a few index entries per practice, not
  ranking thousands of rows.
- ``search_word``: the distinct words per practice and kind; ``search_vocabulary`` (0404): each name word once
  for the whole warehouse, with a trigram index. Typo tolerance matches the query against the vocabulary, keeps
  the words the caller's practices have (``search_word``'s primary key) and then looks their entries up by the
  btree, instead of computing a similarity for every row that shares trigrams with the query.

Both are practice tables under the same RLS policy as the rows they index; the triggers run as the writer, so
a practice's writes can only index that practice's rows.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKeyConstraint, Identity, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema.base import Base, practice_table


class SearchTerm(Base):
    __tablename__ = "search_term"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    # C collation: byte order, so every word starting with "abc" lies between "abc" and "abc" + U+10FFFF.
    word: Mapped[str] = mapped_column(Text(collation="C"), primary_key=True)
    entity_id: Mapped[int] = mapped_column(primary_key=True)


class SearchWord(Base):
    __tablename__ = "search_word"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    word: Mapped[str] = mapped_column(Text(collation="C"), primary_key=True)


class SearchVocabulary(Base):
    """Each name word once for the whole warehouse (migration 0404), for typo matching. It spans tenants, so
    the application role cannot read it: it asks ``search_similar_words()`` for the words its practices have."""

    __tablename__ = "search_vocabulary"
    __table_args__ = (
        Index("ix_search_vocabulary_kind_word", "kind", "word"),
        Index(
            "ix_search_vocabulary_trgm",
            "word",
            postgresql_using="gin",
            postgresql_ops={"word": "gin_trgm_ops"},
        ),
        {"info": {"tenancy": "global"}},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    word: Mapped[str] = mapped_column(Text(collation="C"))
