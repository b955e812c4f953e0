using Alignment.Tokenization;

namespace Alignment.Cli.Commands;

/// <summary><c>align chat</c>: an interactive conversation through the model's chat template.</summary>
internal static class ChatCommand
{
    public static Command Create(CliContext context)
    {
        var (model, sampling) = (new ModelArguments(lora: false), new SamplingArguments());
        var system = CliOption.Text("system", "A system message that opens the conversation.");
        var command = CliCommand.New("chat", "Chat with a model through its chat template (an empty line or /quit ends).", model, sampling, system);
        command.SetAction(parse =>
        {
            string folder = model.Folder(parse);
            var (tokenizer, template) = model.Tokenizer(parse);
            if (template is null)
                throw new NotSupportedException($"'{folder}' has no chat template; name one with --chat-template-path ({string.Join(", ", ChatTemplates.Names)}, a .jinja file or a model folder).");
            GenerationOptions options = sampling.Read(parse, tokenizer);
            using var llm = LlamaForCausalLM.FromPretrained(folder, model.LoadOptions(parse));
            var conversation = new List<ChatMessage>();
            if (parse.GetValue(system) is { } text)
                conversation.Add(new ChatMessage("system", text));
            context.Output.WriteLine("Type a message; an empty line or /quit ends the chat.");
            while (true)
            {
                context.Output.Write("> ");
                string? line = context.Input.ReadLine();
                if (string.IsNullOrWhiteSpace(line) || line.Trim() == "/quit")
                    return 0;
                conversation.Add(new ChatMessage("user", line));
                string reply = SamplingArguments.Reply(llm, tokenizer, template, conversation, options);
                conversation.Add(new ChatMessage("assistant", reply));
                context.Output.WriteLine(reply);
            }
        });
        return command;
    }
}
