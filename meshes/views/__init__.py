"""Dashboard views: parse forms, call meshes.services / meshes.selectors, render. No rules live here."""
