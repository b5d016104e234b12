using Kiln.Chat;
using Kiln.Runtime;

namespace Kiln.Serving;

/// <summary>A conversation as prompt ids: the model's chat template renders it with the assistant's turn opened, as transformers' apply_chat_template does.</summary>
public static class ChatPrompt
{
    /// <summary>
    /// The ids of the rendered prompt. The text already holds the special tokens the template writes (BOS,
    /// usually), so it is encoded without adding them again.
    /// </summary>
    public static int[] Ids(ChatTemplate template, Tokenizer tokenizer, IEnumerable<ChatMessage> messages) =>
        tokenizer.Encode(template.Render(messages, addGenerationPrompt: true), addSpecialTokens: false);
}
