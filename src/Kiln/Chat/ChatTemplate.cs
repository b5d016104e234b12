using System.Text;
using System.Text.Json.Nodes;
using Kiln.Chat.Jinja;
using Kiln.Runtime;

namespace Kiln.Chat;

/// <summary>
/// A model's chat template: the Jinja template that turns a conversation into the prompt text, rendered as
/// transformers' apply_chat_template(tokenize=False) does. The variables are messages,
/// add_generation_prompt, the special tokens of tokenizer_config.json and special_tokens_map.json (bos_token,
/// eos_token, ...), tools
/// and documents (none unless given), and any others the caller passes. The text holds the special tokens
/// the template writes (usually bos_token first): encode it without adding them again. Several threads may
/// render with one instance at once.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>The file transformers saves a template to since 4.43; when present it replaces tokenizer_config.json's.</summary>
    public const string TemplateFileName = "chat_template.jinja";

    private const string SpecialTokensMapFileName = "special_tokens_map.json";

    // The special tokens transformers passes to every template (its special_tokens_map).
    private static readonly string[] SpecialTokenNames = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    private readonly JinjaTemplate template;
    private readonly IReadOnlyDictionary<string, string> specialTokens;

    /// <summary>A template from its text; <paramref name="name"/> is what errors call it.</summary>
    public ChatTemplate(string source, string name, IReadOnlyDictionary<string, string>? specialTokens = null)
    {
        template = JinjaTemplate.Parse(source, name);
        this.specialTokens = specialTokens ?? new Dictionary<string, string>();
    }

    /// <summary>Where the template came from, e.g. "models/x/tokenizer_config.json: chat_template".</summary>
    public string Name => template.Name;

    /// <summary>The special tokens the template sees, by variable name (bos_token, eos_token, ...).</summary>
    public IReadOnlyDictionary<string, string> SpecialTokens => specialTokens;

    /// <summary>
    /// The chat template of a model folder: chat_template.jinja if present, else tokenizer_config.json's
    /// chat_template (a string, or a list of named templates, of which the one named "default").
    /// A model without one is a <see cref="KilnException"/>: "DIR/tokenizer_config.json has no chat_template".
    /// </summary>
    public static ChatTemplate Load(string modelDirectory)
    {
        if (!Directory.Exists(modelDirectory)) throw new KilnException($"{modelDirectory}: model folder not found");
        var configPath = Path.Combine(modelDirectory, TokenizerConfig.FileName);
        var config = JsonFile.ReadObject(configPath) ?? new JsonObject();
        // transformers reads the special tokens from tokenizer_config.json, then lets special_tokens_map.json override them.
        var tokens = new Dictionary<string, string>();
        AddSpecialTokens(tokens, configPath, config);
        var mapPath = Path.Combine(modelDirectory, SpecialTokensMapFileName);
        if (JsonFile.ReadObject(mapPath) is { } map) AddSpecialTokens(tokens, mapPath, map);
        var templatePath = Path.Combine(modelDirectory, TemplateFileName);
        if (File.Exists(templatePath)) return new ChatTemplate(ReadText(templatePath), templatePath, tokens);
        var source = config["chat_template"] switch
        {
            null => throw new KilnException($"{configPath} has no chat_template (and there is no {TemplateFileName} beside it)"),
            JsonValue value when value.TryGetValue<string>(out var text) => text,
            JsonArray named => DefaultOf(configPath, named),
            _ => throw KilnException.InFile(configPath, "chat_template", "expected a string or a list of {\"name\", \"template\"} objects"),
        };
        return new ChatTemplate(source, $"{configPath}: chat_template", tokens);
    }

    private static void AddSpecialTokens(Dictionary<string, string> tokens, string path, JsonObject file)
    {
        foreach (var name in SpecialTokenNames)
        {
            if (TokenizerConfig.ReadToken(path, file, name) is { } token) tokens[name] = token;
        }
    }

    // chat_template.jinja: UTF-8 text, refused when it is not (rather than rendered with replacement characters).
    private static string ReadText(string path)
    {
        using var stream = RegularFile.OpenRead(path);
        if (stream.Length > JsonFile.MaxLength)
            throw new KilnException($"{path}: {stream.Length} bytes is too large for a chat template (limit {JsonFile.MaxLength} bytes)");
        try
        {
            using var reader = new StreamReader(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true));
            return reader.ReadToEnd();
        }
        catch (DecoderFallbackException e)
        {
            throw new KilnException($"{path}: not valid UTF-8", e);
        }
    }

    // The list form, [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]: transformers uses "default".
    private static string DefaultOf(string configPath, JsonArray named)
    {
        var names = new List<string>();
        for (var i = 0; i < named.Count; i++)
        {
            if (named[i] is not JsonObject entry || entry["name"] is not JsonValue name || !name.TryGetValue<string>(out var text)
                || entry["template"] is not JsonValue template || !template.TryGetValue<string>(out var source))
                throw KilnException.InFile(configPath, $"chat_template[{i}]", "expected an object with string \"name\" and \"template\"");
            if (text == "default") return source;
            names.Add(text);
        }
        throw KilnException.InFile(configPath, "chat_template", $"no template named \"default\" (the list has {string.Join(", ", names.Select(n => $"\"{n}\""))})");
    }

    /// <summary>The prompt for <paramref name="messages"/>; see <see cref="Render(JsonArray, bool, IReadOnlyDictionary{string, object?}?, Func{DateTime}?)"/>.</summary>
    public string Render(IEnumerable<ChatMessage> messages, bool addGenerationPrompt = true, IReadOnlyDictionary<string, object?>? variables = null) =>
        RenderValues(messages.Select(m => (object?)new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content }).ToList(),
            addGenerationPrompt, variables, now: null);

    /// <summary>
    /// The prompt for <paramref name="messages"/> (JSON objects with role, content and any other fields),
    /// with the assistant's turn opened when <paramref name="addGenerationPrompt"/>. <paramref name="variables"/>
    /// add to or replace the others (tools, documents, the special tokens, a template's own such as
    /// enable_thinking); <paramref name="now"/> is strftime_now's clock. A template error, or its
    /// raise_exception, is a <see cref="KilnException"/>.
    /// </summary>
    public string Render(JsonArray messages, bool addGenerationPrompt = true, IReadOnlyDictionary<string, object?>? variables = null, Func<DateTime>? now = null) =>
        RenderValues(messages, addGenerationPrompt, variables, now);

    private string RenderValues(object messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? variables, Func<DateTime>? now)
    {
        var all = new Dictionary<string, object?> { ["tools"] = null, ["documents"] = null };
        foreach (var (name, token) in specialTokens) all[name] = token;
        foreach (var (name, value) in variables ?? new Dictionary<string, object?>())
        {
            if (name is "messages" or "add_generation_prompt")
                throw new ArgumentException($"'{name}' is a parameter of Render, not one of its variables", nameof(variables));
            all[name] = value;
        }
        all["messages"] = messages;
        all["add_generation_prompt"] = addGenerationPrompt;
        return template.Render(all, now);
    }
}
