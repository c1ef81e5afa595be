-- Resources: one row per resource, keyed by (name, mesh, type) as in Kuma.
-- Global resources (Mesh, Zone, ...) have mesh = ''. The spec is its proto3-JSON text.
-- A resource may name an owner; deleting the owner deletes what it owns (transitively).
CREATE TABLE resources (
    name              varchar(100) NOT NULL,
    mesh              varchar(100) NOT NULL,
    type              varchar(100) NOT NULL,
    version           integer      NOT NULL,
    spec              text,
    creation_time     timestamptz  NOT NULL DEFAULT now(),
    modification_time timestamptz  NOT NULL DEFAULT now(),
    owner_name        varchar(100),
    owner_mesh        varchar(100),
    owner_type        varchar(100),
    CONSTRAINT resources_pkey PRIMARY KEY (name, mesh, type),
    CONSTRAINT owner_fk FOREIGN KEY (owner_name, owner_mesh, owner_type)
        REFERENCES resources (name, mesh, type) ON DELETE CASCADE
);

-- Listing is by type (and often mesh), ordered by (name, mesh).
CREATE INDEX resources_type_name_mesh_idx ON resources (type, name, mesh);

-- The cascade looks children up by their owner; without this index every delete scans the table.
CREATE INDEX resources_owner_idx ON resources (owner_name, owner_mesh, owner_type);
