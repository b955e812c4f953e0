using Alignment.Tokenization;

namespace Alignment.Cli.Commands;

/// <summary><c>align generate</c>: one reply to a prompt.</summary>
internal static class GenerateCommand
{
    public static Command Create(CliContext context)
    {
        var prompt = CliOption.Text("prompt", "The prompt (a user turn through the chat template when the model has one).");
        prompt.Required = true;
        var (model, sampling) = (new ModelArguments(lora: false), new SamplingArguments());
        var command = CliCommand.New("generate", "Sample a reply to a prompt.", model, sampling, prompt);
        command.SetAction(parse =>
        {
            var (tokenizer, template) = model.Tokenizer(parse);
            GenerationOptions options = sampling.Read(parse, tokenizer);
            using var llm = LlamaForCausalLM.FromPretrained(model.Folder(parse), model.LoadOptions(parse));
            context.Output.WriteLine(SamplingArguments.Reply(llm, tokenizer, template, [new ChatMessage("user", parse.GetValue(prompt)!)], options));
            return 0;
        });
        return command;
    }
}
