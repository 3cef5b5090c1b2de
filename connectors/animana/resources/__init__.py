"""One `spec.ResourceSpec` per Animana resource, one module each (wire model, read mapping, load plan, parents),
collected by `registry`. How to add a resource: connectors/animana/README.md, "Adding a resource"."""
