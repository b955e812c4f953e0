using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Alignment.Tests;

/// <summary>Every C# snippet of the README compiles as written, as a console app with the SDK's implicit usings.</summary>
public sealed partial class ReadmeTests
{
    static string Readme() => File.ReadAllText(Path.Combine(typeof(ReadmeTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "RepositoryRoot").Value!, "README.md"));

    public static TheoryData<int> Snippets()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < CSharpBlock().Matches(Readme()).Count; i++)
            data.Add(i);
        return data;
    }

    // The global usings `dotnet new console` gives an app (ImplicitUsings).
    const string ImplicitUsings = """
        global using System;
        global using System.Collections.Generic;
        global using System.IO;
        global using System.Linq;
        global using System.Net.Http;
        global using System.Threading;
        global using System.Threading.Tasks;
        """;

    [Theory]
    [MemberData(nameof(Snippets))]
    public void The_snippet_compiles(int index)
    {
        string code = CSharpBlock().Matches(Readme())[index].Groups[1].Value;
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Select(path => MetadataReference.CreateFromFile(path));
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        var compilation = CSharpCompilation.Create("Snippet" + index,
            [CSharpSyntaxTree.ParseText(ImplicitUsings, parse), CSharpSyntaxTree.ParseText(code, parse)], references,
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable));
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.ToString()).ToList();
        Assert.True(errors.Count == 0, $"README snippet {index + 1}:\n{code}\n{string.Join("\n", errors)}");
    }

    [GeneratedRegex(@"```csharp\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();
}
