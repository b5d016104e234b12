System.Console.WriteLine("kiln");
