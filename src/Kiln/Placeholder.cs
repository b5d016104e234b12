namespace Kiln; public static class Placeholder {}
