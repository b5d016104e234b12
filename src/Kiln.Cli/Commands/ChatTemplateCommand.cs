using System.CommandLine;
using Kiln.Chat;

namespace Kiln.Cli.Commands;

/// <summary>`kiln chat-template`: prints the prompt a model's chat template makes of a conversation.</summary>
public static class ChatTemplateCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(required: false);
        var messages = new Option<string>("--messages")
        {
            Description = "JSON file: an array of messages, {\"role\": ..., \"content\": ...} (other fields go to the template as they are).",
            Required = true,
        };
        var noGenerationPrompt = new Option<bool>("--no-generation-prompt")
        {
            Description = "Do not open the assistant's turn at the end (the template's add_generation_prompt is false).",
        };
        var command = new Command("chat-template",
            "Print the prompt the model's chat template makes of a conversation, exactly: no newline is added after it.")
        {
            model, messages, noGenerationPrompt,
        };
        command.SetKilnAction(p =>
        {
            var template = ChatTemplate.Load(p.GetValue(model)!);
            var conversation = ChatMessagesFile.Read(p.GetValue(messages)!);
            Console.Out.Write(template.Render(conversation, addGenerationPrompt: !p.GetValue(noGenerationPrompt)));
            return 0;
        });
        return command;
    }
}
