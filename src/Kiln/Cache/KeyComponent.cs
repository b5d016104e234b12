namespace Kiln.Cache;

/// <summary>
/// One factor of a snapshot key, by name ("model.config", "transform.3.fuse_attention", "layout"),
/// with the text or digest that entered the hash. Manifests keep every component so `kiln cache
/// explain` can say which one differs.
/// </summary>
public sealed record KeyComponent(string Name, string Value);
