// Reads and edits the GNU symbol-versioning sections of 64-bit little-endian ELF files.
//
// Why: TorchSharp 0.107's libLibTorchSharp.so lists GLIBCXX_3.4.32 (GCC 13) in its version needs for a
// single symbol, std::ios_base_library_init, which only forces the dependency and is never called.
// Debian 12 and Ubuntu 22.04 ship GLIBCXX_3.4.30, so the loader refuses the file. Marking that one
// version-needed entry weak (VER_FLG_WEAK) makes the loader accept its absence. The change is made only
// on a copy in an app's build, publish or run folder, and only for versions whose every symbol is known to
// be harmless when absent.
//
// Compiled into Alignment.Build.dll (the MSBuild task that patches build and publish output) and, as a
// linked file, into Alignment.dll (TorchRuntime patches the app's own copy before the first load, which is
// what an app that references the library as a project relies on).
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;

namespace Alignment.Build
{
    /// <summary>What <see cref="ElfVersionNeeds.WeakenMissingHarmless"/> did to one file.</summary>
    internal sealed class ElfPatchResult
    {
        /// <summary>Versions newly marked weak in this call.</summary>
        public List<string> Weakened { get; } = new List<string>();

        /// <summary>Versions that were already weak.</summary>
        public List<string> AlreadyWeak { get; } = new List<string>();

        /// <summary>Missing versions that are used by symbols not known to be harmless; left untouched.</summary>
        public List<string> Blocking { get; } = new List<string>();
    }

    /// <summary>Reads and edits the GNU symbol-versioning sections of 64-bit little-endian ELF files.</summary>
    internal static partial class ElfVersionNeeds
    {
        /// <summary>Symbols that reference a version only to force a dependency; their absence is harmless.</summary>
        public static readonly HashSet<string> HarmlessSymbols = new HashSet<string>(StringComparer.Ordinal)
        {
            "_ZSt21ios_base_library_initv", // std::ios_base_library_init (GCC 13), never called by TorchSharp
        };

        public const string LibStdCxxSoname = "libstdc++.so.6";
        const uint ShtDynsym = 11;
        const uint ShtGnuVerdef = 0x6ffffffd;
        const uint ShtGnuVerneed = 0x6ffffffe;
        const uint ShtGnuVersym = 0x6fffffff;
        const ushort VerFlgWeak = 0x2;

        /// <summary>Every *.so and *.so.N file below <paramref name="directory"/>.</summary>
        public static IEnumerable<string> SharedObjectsUnder(string directory) =>
            System.IO.Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)
                .Where(f => { string n = Path.GetFileName(f); return n.EndsWith(".so", StringComparison.Ordinal) || n.Contains(".so."); })
                .OrderBy(f => f, StringComparer.Ordinal);

        /// <summary>The libstdc++.so.6 the dynamic loader would pick first on this machine, or null.</summary>
        public static string? FindSystemLibStdCxx()
        {
            var dirs = new List<string>();
            string? ldPath = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
            if (!string.IsNullOrEmpty(ldPath))
                dirs.AddRange(ldPath!.Split(':').Where(d => d.Length > 0));
            string triplet = RuntimeInformation.OSArchitecture == Architecture.Arm64 ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
            dirs.AddRange(new[] { "/lib/" + triplet, "/usr/lib/" + triplet, "/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib" });
            foreach (string dir in dirs)
            {
                string candidate = Path.Combine(dir, LibStdCxxSoname);
                if (File.Exists(candidate) && IsElf64Le(candidate))
                    return candidate;
            }
            return null;
        }

        /// <summary>The version names a library defines (its .gnu.version_d), e.g. GLIBCXX_3.4.30.</summary>
        public static HashSet<string> DefinedVersions(string path)
        {
            var names = new HashSet<string>(StringComparer.Ordinal);
            using (var stream = File.OpenRead(path))
            {
                var elf = ElfFile.Read(stream, path);
                ElfSection? verdef = elf.Sections.FirstOrDefault(s => s.Type == ShtGnuVerdef);
                if (verdef == null)
                    return names;
                byte[] data = elf.ReadSection(stream, verdef);
                byte[] strings = elf.ReadSection(stream, elf.Sections[(int)verdef.Link]);
                long entry = 0;
                for (int i = 0; i < (int)verdef.Info && entry + 20 <= data.Length; i++)
                {
                    uint aux = BitConverter.ToUInt32(data, (int)entry + 12);
                    if (entry + aux + 8 <= data.Length)
                        names.Add(CString(strings, BitConverter.ToUInt32(data, (int)(entry + aux))));
                    uint next = BitConverter.ToUInt32(data, (int)entry + 16);
                    if (next == 0)
                        break;
                    entry += next;
                }
            }
            return names;
        }

        /// <summary>One version a file needs from a library, with the symbols bound to it.</summary>
        public sealed class VersionNeed
        {
            internal VersionNeed(string library, string version, ushort index, ushort flags, long flagsOffset, List<string> symbols)
            {
                Library = library; Version = version; Index = index; Flags = flags; FlagsOffset = flagsOffset; Symbols = symbols;
            }

            public string Library { get; }
            public string Version { get; }
            public ushort Index { get; }
            public ushort Flags { get; }
            /// <summary>File offset of this entry's vna_flags field.</summary>
            public long FlagsOffset { get; }
            /// <summary>Dynamic symbols whose version index is this entry's.</summary>
            public List<string> Symbols { get; }
            public bool IsWeak => (Flags & VerFlgWeak) != 0;
        }

        /// <summary>Every version-needed entry of the file (its .gnu.version_r) with the symbols bound to it.</summary>
        public static List<VersionNeed> ReadNeeds(string path)
        {
            var needs = new List<VersionNeed>();
            if (!IsElf64Le(path))
                return needs;
            using (var stream = File.OpenRead(path))
            {
                var elf = ElfFile.Read(stream, path);
                ElfSection? verneed = elf.Sections.FirstOrDefault(s => s.Type == ShtGnuVerneed);
                if (verneed == null)
                    return needs;
                byte[] data = elf.ReadSection(stream, verneed);
                byte[] strings = elf.ReadSection(stream, elf.Sections[(int)verneed.Link]);
                Dictionary<ushort, List<string>> symbolsByVersion = SymbolsByVersionIndex(stream, elf);

                long entry = 0;
                for (int i = 0; i < (int)verneed.Info && entry + 16 <= data.Length; i++)
                {
                    ushort count = BitConverter.ToUInt16(data, (int)entry + 2);
                    string library = CString(strings, BitConverter.ToUInt32(data, (int)entry + 4));
                    long aux = entry + BitConverter.ToUInt32(data, (int)entry + 8);
                    for (int j = 0; j < count && aux + 16 <= data.Length; j++)
                    {
                        ushort flags = BitConverter.ToUInt16(data, (int)aux + 4);
                        ushort index = BitConverter.ToUInt16(data, (int)aux + 6);
                        string version = CString(strings, BitConverter.ToUInt32(data, (int)aux + 8));
                        List<string> symbols;
                        if (!symbolsByVersion.TryGetValue(index, out symbols!))
                            symbols = new List<string>();
                        needs.Add(new VersionNeed(library, version, index, flags, (long)verneed.Offset + aux + 4, symbols));
                        uint nextAux = BitConverter.ToUInt32(data, (int)aux + 12);
                        if (nextAux == 0)
                            break;
                        aux += nextAux;
                    }
                    uint next = BitConverter.ToUInt32(data, (int)entry + 12);
                    if (next == 0)
                        break;
                    entry += next;
                }
            }
            return needs;
        }

        /// <summary>
        /// Marks weak each libstdc++ version that <paramref name="path"/> needs, that <paramref name="available"/>
        /// lacks, and whose symbols are all in <see cref="HarmlessSymbols"/>. The file is rewritten through a
        /// temporary copy and a rename, so a hard link to it (such as a package cache entry) is never modified.
        /// Running it again changes nothing.
        /// </summary>
        public static ElfPatchResult WeakenMissingHarmless(string path, ISet<string> available)
        {
            var result = new ElfPatchResult();
            var toPatch = new List<VersionNeed>();
            foreach (VersionNeed need in ReadNeeds(path))
            {
                if (need.Library != LibStdCxxSoname || available.Contains(need.Version))
                    continue;
                if (need.IsWeak)
                    result.AlreadyWeak.Add(need.Version);
                else if (need.Symbols.Count > 0 && need.Symbols.All(HarmlessSymbols.Contains))
                    toPatch.Add(need);
                else
                    result.Blocking.Add(need.Version);
            }
            if (toPatch.Count == 0)
                return result;

            string temporary = path + ".alignment-tmp";
            File.Copy(path, temporary, overwrite: true); // keeps the file mode
            try
            {
                using (var stream = new FileStream(temporary, FileMode.Open, FileAccess.ReadWrite))
                {
                    foreach (VersionNeed need in toPatch)
                    {
                        byte[] flags = BitConverter.GetBytes((ushort)(need.Flags | VerFlgWeak));
                        stream.Seek(need.FlagsOffset, SeekOrigin.Begin);
                        stream.Write(flags, 0, 2);
                        result.Weakened.Add(need.Version);
                    }
                }
                File.Delete(path);
                File.Move(temporary, path);
            }
            finally
            {
                if (File.Exists(temporary))
                    File.Delete(temporary);
            }
            return result;
        }

        /// <summary>True when the file starts with the ELF magic of a 64-bit little-endian object.</summary>
        public static bool IsElf64Le(string path)
        {
            var head = new byte[6];
            using (var stream = File.OpenRead(path))
            {
                if (ReadFully(stream, head) < head.Length)
                    return false;
            }
            return head[0] == 0x7f && head[1] == (byte)'E' && head[2] == (byte)'L' && head[3] == (byte)'F' && head[4] == 2 && head[5] == 1;
        }

        static Dictionary<ushort, List<string>> SymbolsByVersionIndex(Stream stream, ElfFile elf)
        {
            var map = new Dictionary<ushort, List<string>>();
            ElfSection? dynsym = elf.Sections.FirstOrDefault(s => s.Type == ShtDynsym);
            ElfSection? versym = elf.Sections.FirstOrDefault(s => s.Type == ShtGnuVersym);
            if (dynsym == null || versym == null)
                return map;
            byte[] symbols = elf.ReadSection(stream, dynsym);
            byte[] names = elf.ReadSection(stream, elf.Sections[(int)dynsym.Link]);
            byte[] versions = elf.ReadSection(stream, versym);
            int count = Math.Min(symbols.Length / 24, versions.Length / 2);
            for (int i = 1; i < count; i++)
            {
                ushort index = (ushort)(BitConverter.ToUInt16(versions, i * 2) & 0x7fff);
                List<string> list;
                if (!map.TryGetValue(index, out list!))
                    map[index] = list = new List<string>();
                list.Add(CString(names, BitConverter.ToUInt32(symbols, i * 24)));
            }
            return map;
        }

        static string CString(byte[] table, uint offset)
        {
            if (offset >= table.Length)
                return "";
            int end = Array.IndexOf(table, (byte)0, (int)offset);
            if (end < 0)
                end = table.Length;
            return Encoding.ASCII.GetString(table, (int)offset, end - (int)offset);
        }

        static int ReadFully(Stream stream, byte[] buffer)
        {
            int total = 0;
            while (total < buffer.Length)
            {
                int read = stream.Read(buffer, total, buffer.Length - total);
                if (read == 0)
                    break;
                total += read;
            }
            return total;
        }
    }
}
