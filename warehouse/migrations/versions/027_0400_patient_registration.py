"""Registering patients in VetConnect: breeds per species, an estimated date of birth, one chip per animal.

- ``breed``: the seeded list of breeds per species (reference data, the same for every practice; read by all,
  written only by migrations). ``practice_breed``: the breeds a practice added itself (a local cross, a rare breed),
  a practice table with the usual ``tenant_isolation`` policy and audit triggers. A practice's addition is its own:
  a receptionist's addition does not change the pick list of every practice of the franchise, and it needs no
  franchise-level right.
- ``patient.date_of_birth_estimated``: the date of birth was worked out from an age the owner gave ("about three
  years"), not known. ``NOT NULL DEFAULT false`` is a catalogue-only change, so no table rewrite.
- A microchip is unique among the practice's patients that are not deleted (a merged-away duplicate keeps its
  chip): the plain index on (practice_id, microchip) becomes a unique partial one. A database that already holds
  two live patients with one chip stops the migration and says which practice (merge them first).
- ``microchip_known_in_franchise(practice, chip)``: the names of the *other* practices of the practice's franchise
  where a live patient has the chip, and nothing else of them. SECURITY DEFINER because RLS hides those practices'
  patients; it answers only for a practice of the caller's own access context.

Revision ID: 0400
Revises: 0380
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0400"
down_revision: str | Sequence[str] | None = "0390"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SPECIES = (
    "dog", "cat", "rabbit", "guinea_pig", "hamster", "rat", "ferret", "bird", "reptile", "horse", "goat",
    "sheep", "pig", "cattle", "other",
)  # fmt: skip
# The breeds Dutch practices see most (names as the Raad van Beheer, the stud books and owners write them).
SEEDED_BREEDS = {
    "dog": (
        "Australian Shepherd", "Beagle", "Berner Sennenhond", "Border Collie", "Boxer",
        "Cavalier King Charles Spaniel", "Chihuahua", "Cocker Spaniel", "Dalmatiër", "Duitse Herder", "Engelse Bulldog",
        "Flatcoated Retriever", "Franse Bulldog", "Golden Retriever", "Hollandse Herder", "Husky",
        "Jack Russell Terriër", "Kooikerhondje", "Labradoodle", "Labrador Retriever", "Maltezer",
        "Mechelse Herder", "Mix", "Mopshond", "Poedel", "Rottweiler", "Shih Tzu", "Stabyhoun", "Teckel",
        "Weimaraner", "West Highland White Terriër", "Yorkshire Terriër",
    ),
    "cat": (
        "Abessijn", "Bengaal", "Birmaan", "Britse Korthaar", "Europese Korthaar", "Maine Coon", "Mix",
        "Noorse Boskat", "Perzische kat", "Ragdoll", "Russisch Blauw", "Siamees", "Sphynx",
    ),
    "rabbit": ("Dwergkonijn", "Hangoor", "Hollander", "Lotharinger", "Mix", "Rex", "Vlaamse Reus"),
    "guinea_pig": ("Abessijn", "Gladhaar", "Peruaan", "Rex", "Teddy"),
    "hamster": ("Chinese dwerghamster", "Goudhamster", "Roborovski", "Russische dwerghamster"),
    "rat": ("Dumbo", "Tamme rat"),
    "ferret": ("Fret", "Iltisfret"),
    "bird": ("Agapornis", "Grasparkiet", "Grijze roodstaart", "Kanarie", "Valkparkiet", "Zebravink"),
    "reptile": ("Baardagame", "Griekse landschildpad", "Korenslang", "Luipaardgekko", "Roodwangschildpad"),
    "horse": (
        "Fjord", "Fries", "Gelders paard", "Groninger", "Haflinger", "KWPN", "New Forest pony", "Shetlander",
        "Tinker", "Welsh pony",
    ),
    "goat": ("Boergeit", "Dwerggeit", "Nederlandse landgeit", "Saanen"),
    "sheep": ("Drents heideschaap", "Kameroenschaap", "Swifter", "Texelaar", "Zwartbles"),
    "pig": ("Hangbuikzwijn", "Kunekune", "Mini-pig"),
    "cattle": ("Blaarkop", "Holstein-Friesian", "Lakenvelder", "MRIJ", "Schotse Hooglander"),
}  # fmt: skip

MICROCHIP_KNOWN_IN_FRANCHISE = """
CREATE OR REPLACE FUNCTION public.microchip_known_in_franchise(p_practice_id bigint, p_microchip text)
 RETURNS SETOF text
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
  SELECT o.name
    FROM tenant h
    JOIN tenant o ON o.franchise_id = h.franchise_id AND o.kind = 'practice' AND o.id <> h.id
   WHERE h.id = p_practice_id AND h.id = ANY (app_practice_ids())
     AND EXISTS (SELECT FROM patient p
                  WHERE p.practice_id = o.id AND p.microchip = p_microchip AND p.deleted_at IS NULL)
   ORDER BY o.name
$function$
"""

AUDIT_TRIGGERS = (
    "CREATE TRIGGER audit_insert AFTER INSERT ON practice_breed REFERENCING NEW TABLE AS changed_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_statement()",
    "CREATE TRIGGER audit_update AFTER UPDATE ON practice_breed REFERENCING NEW TABLE AS changed_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_statement()",
    "CREATE TRIGGER audit_delete AFTER DELETE ON practice_breed REFERENCING OLD TABLE AS changed_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_statement()",
)


def _species_check(table: str) -> str:
    listed = ", ".join(f"'{s}'" for s in SPECIES)
    return f"CONSTRAINT ck_{table}_species CHECK (species IN ({listed}))"


def upgrade() -> None:
    op.execute(
        """
        DO $$
        DECLARE
          clash record;
        BEGIN
          SELECT practice_id, microchip, count(*) AS patients INTO clash
            FROM patient WHERE microchip IS NOT NULL AND deleted_at IS NULL
           GROUP BY practice_id, microchip HAVING count(*) > 1 LIMIT 1;
          IF FOUND THEN
            RAISE EXCEPTION 'practice % has % live patients with microchip %: merge them before this migration',
              clash.practice_id, clash.patients, clash.microchip;
          END IF;
        END $$;
        DROP INDEX ix_patient_microchip;
        CREATE UNIQUE INDEX uq_patient_microchip ON patient (practice_id, microchip) WHERE deleted_at IS NULL;
        ALTER TABLE patient ADD COLUMN date_of_birth_estimated boolean NOT NULL DEFAULT false;
        """
    )
    op.execute(
        f"""
        CREATE TABLE breed (
          species varchar(32) NOT NULL {_species_check("breed")},
          name varchar(100) NOT NULL,
          CONSTRAINT pk_breed PRIMARY KEY (species, name)
        );
        ALTER TABLE breed ENABLE ROW LEVEL SECURITY;
        ALTER TABLE breed FORCE ROW LEVEL SECURITY;
        CREATE POLICY reference_data ON breed FOR SELECT USING (true);
        GRANT SELECT ON breed TO vetconnect_app, vetconnect_system;

        CREATE TABLE practice_breed (
          practice_id bigint NOT NULL CONSTRAINT fk_practice_breed_practice_id_tenant REFERENCES tenant (id),
          species varchar(32) NOT NULL {_species_check("practice_breed")},
          name varchar(100) NOT NULL,
          added_by bigint,
          added_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_practice_breed PRIMARY KEY (practice_id, species, name)
        );
        ALTER TABLE practice_breed ENABLE ROW LEVEL SECURITY;
        ALTER TABLE practice_breed FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON practice_breed
          USING (practice_id = ANY (app_practice_ids()))
          WITH CHECK (practice_id = ANY (app_practice_ids()));
        GRANT SELECT, INSERT, UPDATE, DELETE ON practice_breed TO vetconnect_app;
        GRANT SELECT, INSERT, UPDATE, DELETE ON practice_breed TO vetconnect_system;
        """
    )
    for trigger in AUDIT_TRIGGERS:
        op.execute(trigger)
    rows = [(species, name) for species, names in SEEDED_BREEDS.items() for name in names]
    values = ", ".join(
        f"('{species}', '{name}')" for species, name in rows
    )  # constants above, no quotes in them
    op.execute(f"INSERT INTO breed (species, name) VALUES {values}")
    op.execute(MICROCHIP_KNOWN_IN_FRANCHISE)
    op.execute(
        """
        REVOKE ALL ON FUNCTION microchip_known_in_franchise(bigint, text) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION microchip_known_in_franchise(bigint, text) TO vetconnect_app, vetconnect_system;
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION microchip_known_in_franchise(bigint, text)")
    op.execute("DROP TABLE practice_breed")
    op.execute("DROP TABLE breed")
    op.execute(
        """
        ALTER TABLE patient DROP COLUMN date_of_birth_estimated;
        DROP INDEX uq_patient_microchip;
        CREATE INDEX ix_patient_microchip ON patient (practice_id, microchip);
        """
    )
