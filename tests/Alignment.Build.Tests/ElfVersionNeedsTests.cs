using System.Runtime.InteropServices;

namespace Alignment.Build.Tests;

public sealed class ElfVersionNeedsTests : IDisposable
{
    const string Missing = "GLIBCXX_3.4.32";
    readonly string _folder = Directory.CreateTempSubdirectory("alignment-elf-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    string CopyOfPristine()
    {
        string copy = Path.Combine(_folder, "libLibTorchSharp.so");
        File.Copy(Fixture.PristineBridge(), copy);
        return copy;
    }

    /// <summary>A libstdc++ like Debian 12's: every version of the file's needs except the GCC 13 one.</summary>
    static HashSet<string> Debian12Versions(string path) =>
        ElfVersionNeeds.ReadNeeds(path).Where(n => n.Library == ElfVersionNeeds.LibStdCxxSoname && n.Version != Missing)
            .Select(n => n.Version).ToHashSet();

    [Fact]
    public void Pristine_bridge_needs_GLIBCXX_3_4_32_for_one_harmless_symbol_only()
    {
        var need = ElfVersionNeeds.ReadNeeds(Fixture.PristineBridge()).Single(n => n.Version == Missing);
        Assert.Equal("libstdc++.so.6", need.Library);
        Assert.False(need.IsWeak);
        Assert.Equal(["_ZSt21ios_base_library_initv"], need.Symbols);
    }

    [Fact]
    public void Weakening_flips_exactly_the_weak_bit_of_that_one_entry()
    {
        string copy = CopyOfPristine();
        byte[] before = File.ReadAllBytes(copy);

        ElfPatchResult result = ElfVersionNeeds.WeakenMissingHarmless(copy, Debian12Versions(copy));

        Assert.Equal([Missing], result.Weakened);
        Assert.Empty(result.Blocking);
        byte[] after = File.ReadAllBytes(copy);
        Assert.Equal(before.Length, after.Length);
        int[] changed = Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).ToArray();
        Assert.Single(changed);
        Assert.Equal(before[changed[0]] | 0x2, after[changed[0]]); // VER_FLG_WEAK in vna_flags' low byte
        Assert.True(ElfVersionNeeds.ReadNeeds(copy).Single(n => n.Version == Missing).IsWeak);
    }

    [Fact]
    public void Weakening_twice_changes_nothing_the_second_time()
    {
        string copy = CopyOfPristine();
        ElfVersionNeeds.WeakenMissingHarmless(copy, Debian12Versions(copy));
        byte[] once = File.ReadAllBytes(copy);

        ElfPatchResult again = ElfVersionNeeds.WeakenMissingHarmless(copy, Debian12Versions(copy));

        Assert.Empty(again.Weakened);
        Assert.Equal([Missing], again.AlreadyWeak);
        Assert.Equal(once, File.ReadAllBytes(copy));
    }

    [Fact]
    public void A_system_that_has_the_version_gets_no_change()
    {
        string copy = CopyOfPristine();
        var available = Debian12Versions(copy);
        available.Add(Missing);
        byte[] before = File.ReadAllBytes(copy);

        ElfPatchResult result = ElfVersionNeeds.WeakenMissingHarmless(copy, available);

        Assert.Empty(result.Weakened);
        Assert.Equal(before, File.ReadAllBytes(copy));
    }

    [Fact]
    public void A_missing_version_that_real_symbols_use_is_reported_and_left_alone()
    {
        string copy = CopyOfPristine();
        var available = Debian12Versions(copy);
        available.Remove("GLIBCXX_3.4.30");
        byte[] before = File.ReadAllBytes(copy);

        ElfPatchResult result = ElfVersionNeeds.WeakenMissingHarmless(copy, available);

        Assert.Contains("GLIBCXX_3.4.30", result.Blocking);
        Assert.DoesNotContain("GLIBCXX_3.4.30", result.Weakened);
        Assert.Equal([Missing], result.Weakened);
        Assert.False(ElfVersionNeeds.ReadNeeds(copy).Single(n => n.Version == "GLIBCXX_3.4.30").IsWeak);
        Assert.Equal(before.Length, File.ReadAllBytes(copy).Length);
    }

    [DllImport("libc", EntryPoint = "link", SetLastError = true)]
    static extern int HardLink(string existing, string created);

    [Fact]
    public void A_hard_linked_source_such_as_a_package_cache_entry_is_never_modified()
    {
        string cache = Path.Combine(_folder, "cache.so");
        File.Copy(Fixture.PristineBridge(), cache);
        string output = Path.Combine(_folder, "output.so");
        Assert.Equal(0, HardLink(cache, output));
        byte[] before = File.ReadAllBytes(cache);

        ElfPatchResult result = ElfVersionNeeds.WeakenMissingHarmless(output, Debian12Versions(output));

        Assert.Equal([Missing], result.Weakened);
        Assert.Equal(before, File.ReadAllBytes(cache));
        Assert.True(ElfVersionNeeds.ReadNeeds(output).Single(n => n.Version == Missing).IsWeak);
    }

    [Fact]
    public void Non_elf_files_are_skipped()
    {
        string text = Path.Combine(_folder, "notes.so");
        File.WriteAllText(text, "not a shared object");
        Assert.Empty(ElfVersionNeeds.ReadNeeds(text));
        Assert.Empty(ElfVersionNeeds.WeakenMissingHarmless(text, new HashSet<string>()).Weakened);
    }

    [Fact]
    public void The_system_libstdcxx_is_found_and_its_versions_read()
    {
        string? system = ElfVersionNeeds.FindSystemLibStdCxx();
        Assert.NotNull(system);
        HashSet<string> versions = ElfVersionNeeds.DefinedVersions(system);
        Assert.Contains("GLIBCXX_3.4", versions);
        Assert.Contains("CXXABI_1.3", versions);
    }

    [Fact]
    public void The_bridge_this_test_process_loaded_is_usable_on_this_system()
    {
        string bridge = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        var system = ElfVersionNeeds.DefinedVersions(ElfVersionNeeds.FindSystemLibStdCxx()!);
        foreach (var need in ElfVersionNeeds.ReadNeeds(bridge).Where(n => n.Library == ElfVersionNeeds.LibStdCxxSoname))
            Assert.True(system.Contains(need.Version) || need.IsWeak, $"{need.Version} is neither on the system nor weak");
    }
}
