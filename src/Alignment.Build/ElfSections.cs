// The section table of a 64-bit little-endian ELF file, as ElfVersionNeeds reads it.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;

namespace Alignment.Build
{
    internal static partial class ElfVersionNeeds
    {
        sealed class ElfSection
        {
            public uint Type;
            public ulong Offset;
            public ulong Size;
            public uint Link;
            public uint Info;
        }

        sealed class ElfFile
        {
            public List<ElfSection> Sections = new List<ElfSection>();
            long _length;

            public static ElfFile Read(Stream stream, string path)
            {
                var header = new byte[64];
                if (ReadFully(stream, header) < header.Length || header[4] != 2 || header[5] != 1)
                    throw new InvalidDataException(path + " is not a 64-bit little-endian ELF file.");
                ulong sectionOffset = BitConverter.ToUInt64(header, 0x28);
                ushort entrySize = BitConverter.ToUInt16(header, 0x3A);
                ushort count = BitConverter.ToUInt16(header, 0x3C);
                var elf = new ElfFile { _length = stream.Length };
                if (sectionOffset == 0 || count == 0 || entrySize < 64 || (long)sectionOffset + (long)count * entrySize > stream.Length)
                    return elf;
                var table = new byte[count * entrySize];
                stream.Seek((long)sectionOffset, SeekOrigin.Begin);
                ReadFully(stream, table);
                for (int i = 0; i < count; i++)
                {
                    int at = i * entrySize;
                    elf.Sections.Add(new ElfSection
                    {
                        Type = BitConverter.ToUInt32(table, at + 4),
                        Offset = BitConverter.ToUInt64(table, at + 24),
                        Size = BitConverter.ToUInt64(table, at + 32),
                        Link = BitConverter.ToUInt32(table, at + 40),
                        Info = BitConverter.ToUInt32(table, at + 44),
                    });
                }
                return elf;
            }

            public byte[] ReadSection(Stream stream, ElfSection section)
            {
                if ((long)section.Offset + (long)section.Size > _length)
                    throw new InvalidDataException("An ELF section lies past the end of the file.");
                var data = new byte[section.Size];
                stream.Seek((long)section.Offset, SeekOrigin.Begin);
                ReadFully(stream, data);
                return data;
            }
        }
    }
}
