//! Human-readable Bijlage 3 (Markdown and HTML) from the policy set.
