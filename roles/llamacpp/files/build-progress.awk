# The latest step of a llama-cpp-python build log (pip wheel -v): Ninja's "[25/193] ... -c path/vec.cpp" or
# Make's "[ 45%] Building CXX object ...", as "[25/193] vec.cpp"; the last pip line before CMake starts.
/\[ *[0-9]+(\/[0-9]+|%)\]/ {
  match($0, /\[ *[0-9]+(\/[0-9]+|%)\]/)
  n = split($NF, parts, "/")
  step = substr($0, RSTART, RLENGTH) " " parts[n]
  next
}
/^(Collecting|Building|Processing|  Building|  Running|  Created|  Stored)/ { if (step == "") pip = $0 }
END { print (step != "" ? step : (pip != "" ? pip : "starting")) }
