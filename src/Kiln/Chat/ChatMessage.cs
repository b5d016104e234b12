namespace Kiln.Chat;

/// <summary>One turn of a conversation: "system", "user" or "assistant" (or any role the template knows) and its text.</summary>
public sealed record ChatMessage(string Role, string Content);
