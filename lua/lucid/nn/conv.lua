-- lucid.nn.conv: placeholder until the family lands.
return function(nn, P) end
